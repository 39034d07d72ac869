"""The model side: an exported model directory, run by a backend, decoded into instances.

``model_dir`` (the directory and its metadata), ``inference`` (one model with its backend session and its
decoder), ``predictor`` (one or two models as one pose model: top-down's pair), ``postprocess`` with
``peaks``, ``paf_grouping``, ``topdown`` and ``identity`` (from raw outputs to ``instances``), and ``warmup``
(the compiled kernels loaded and run once before a run's clock starts).
"""
