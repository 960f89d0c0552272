"""A training run's life, as a folder: what is written into it and what is read back out.

- ``folder``: the run folder itself — its lock, numbered folders, ``--force`` replacement, file names;
- ``checkpoint``: the ``Checkpoint`` record (plain tensors and numbers, ``weights_only`` loading);
- ``metrics_log``: one typed record per ``metrics.jsonl`` line;
- ``writer``: everything a run writes while it trains (lines, pictures, checkpoints, TensorBoard);
- ``tensorboard``: the optional TensorBoard mirror of ``metrics.jsonl``;
- ``resume``: what a run restarts from and what may change on ``--resume``;
- ``transfer``: ``train.init_from`` (weights by layer name) and ``train.freeze``;
- ``early_stop``: which epoch ``best.pt`` holds, and when to stop;
- ``interrupt``: Ctrl-C at step boundaries, with a checkpoint and the command that resumes;
- ``dryrun``: ``geocnn train --dry-run``, what a run would do.

Nothing is imported here, so ``geocnn.runs.folder`` stays light (config parsing reads it without torch).
"""
