"""Files -> lazy grids: SEG-Y and NumPy readers, stacking, normalisation, outputs; numpy + segyio (+ numba, optional).

Modules, in dependency order (each imports only those above it):

``headers``    SEG-Y textual/binary headers, trace-header scan, grid suggestions
``ibmjit``     the compiled IBM row decoder (imports numba; loaded by ``ibm`` only when installed)
``ibm``        IBM floats -> IEEE float32 (compiled with numba when installed, else NumPy)
``segy``       SEG-Y layout, geometry inference, lazy sample access
``formats``    one record per file format: suffixes, output, store (the only place suffixes live)
``spec``       :class:`~geocnn.grids.spec.InputSpec`: one input file and how to read it
``npyfile``    ``.npy``/``.npz`` files someone else wrote (damaged headers, complex values)
``labels``     per-trace label files (``.npy``, ``.csv``)
``sidecar``    the JSON beside a geocnn ``.npy`` (axes, sample axis, sources)
``cache``      the decoded float32 copy of IBM/integer SEG-Y, for fast random patches
``sources``    one file each (SEG-Y, ``.npy``, ``.npz``) as a :class:`~geocnn.grids.sources.Source`
``stores``     MDIO v1 / Zarr stores as sources (zarr imported on first use: ``geocnn[mdio]``)
``tiff``       which TIFF family a ``.tif`` is (GeoTIFF or stack), decided by content
``geotiff``    GeoTIFF/COG sources through rasterio (imported on first use: ``geocnn[geo]``)
``tiffstack``  multi-page/OME/ImageJ TIFF and folders of slices through tifffile (``geocnn[tiff]``)
``netcdf``     netCDF/HDF5 variables as sources (xarray imported on first use: ``geocnn[xarray]``)
``kinds``      one record per format: which source opens it
``grid``       :class:`~geocnn.grids.grid.Grid`: channels-first view of stacked sources
``normalize``  per-channel statistics from a bounded trace sample
``checks``     every value a run reads is finite (streamed, remembered per file)
``pending``    the one output interface (prepare, write rows, commit, abort) and its ``OutputSpec``
``npyout``     ``.npy`` outputs with a JSON sidecar
``segyout``    SEG-Y outputs with the source's headers (stacks, score maps: trace selections)
``storeout``   ``.mdio``/``.zarr`` outputs in chunk-aligned parts, renamed into place at commit
``geotiffout`` GeoTIFF outputs (rows mapped, one tiled compressed GeoTIFF at commit)
``tiffstackout`` OME-TIFF outputs with the input's voxel size
``netcdfout``  netCDF outputs with the input's coordinates and attributes
``writer``     the output class of each format, class sets, ``prepare``, ``write_array``
``mdioconvert`` SEG-Y <-> MDIO through mdio's converters
``convert``    SEG-Y <-> ``.npy``/``.zarr``/``.mdio``/netCDF, and between array formats, in bounded memory
``inspect``    what ``geocnn inspect`` shows

Nothing here imports torch, the model or the training code (tests/test_layering.py checks it),
nor zarr/mdio/rasterio/tifffile/xarray/h5py at import time (tests/test_stores.py, tests/test_tiff.py,
tests/test_netcdf.py check it).
"""
