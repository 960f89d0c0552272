"""Self-supervised learning from the noisy input alone: what each patch hides and how it is scored.

- ``masking``: the ``Masking`` records of the self-supervised tasks (blind spots, hidden traces) and
  their trivial baselines;
- ``blindspots``: blind regions shaped like the noise's correlation (``data.mask.shape``, ``auto``);
- ``blindplan``: how a run applies them — masked inputs, or a network blind by construction;
- ``scoring``: validation on the hidden samples, against the clean twin, beside the classical method.

NumPy-only modules (masking, blindspots) are read by config parsing; nothing is imported here.
"""
