"""Quality: how good the signals are, and what reviewers read before a change lands.

- `evaluate` — each signal's error against the sample catalog's ground truth;
- `annotation` — the review queue of model answers, the decisions, the gold set;
  `agreement` — how a tagging signal agrees with that gold set;
- `drift` — a signal's latest values against a baseline run; `drift_report` — Markdown and HTML;
- `contracts` — the declared contracts at a git revision, the working tree or an exported file;
- `report` — the Markdown tables these reports share; `errors` — this room's errors.

Imports `features`, the lake and the sample catalog (its ground truth); never Ray or Feast.
"""
