"""Files -> lazy grids: SEG-Y and NumPy readers, stacking, normalisation, outputs; numpy + segyio only.

Modules, in dependency order (each imports only those above it):

``headers``    SEG-Y textual/binary headers, trace-header scan, grid suggestions
``segy``       SEG-Y layout, IBM decoding, geometry inference, lazy sample access
``spec``       :class:`~geocnn.grids.spec.InputSpec`: one input file and how to read it
``npyfile``    ``.npy``/``.npz`` files someone else wrote (damaged headers, complex values)
``labels``     per-trace label files (``.npy``, ``.csv``)
``sidecar``    the JSON beside a geocnn ``.npy`` (axes, sample axis, sources)
``cache``      the decoded float32 copy of IBM/integer SEG-Y, for fast random patches
``sources``    one file each (SEG-Y, ``.npy``, ``.npz``) as a :class:`~geocnn.grids.sources.Source`
``grid``       :class:`~geocnn.grids.grid.Grid`: channels-first view of stacked sources
``normalize``  per-channel statistics from a bounded trace sample
``checks``     every value a run reads is finite (streamed, remembered per file)
``writer``     outputs (SEG-Y with the source's headers, ``.npy`` + sidecar), written in parts
``convert``    SEG-Y <-> ``.npy`` in bounded memory
``inspect``    what ``geocnn inspect`` shows

Nothing here imports torch, the model or the training code (tests/test_layering.py checks it).
"""
