"""The classical methods a geophysicist would use instead of a network (NumPy only, no torch).

Every learned result geocnn reports stands beside one of these, computed on the same data: f-x
deconvolution for random-noise attenuation, linear and f-x/POCS interpolation for missing traces, an
STA/LTA trigger for phase picks (through ObsPy).
"""
