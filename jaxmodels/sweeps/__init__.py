"""`jaxmodels sweep`: hyper-parameter searches on Optuna, each trial an ordinary workdir trained by the loop.

    space.py     the search-space file: read, checked against the config schema, sampled into a trial's config
    settings.py  what a sweep is (sweep.json and the study's storage), so that restarts and workers agree
    pruning.py   the pruner and the loop's stopper that reports each evaluation to the trial
    runner.py    the worker: exactly N finished trials, interrupted trials resumed from their checkpoints
    report.py    the best trials as a table (report.md, report.csv) and plots (report.png, curves.png)

Optuna is imported only here, so `import jaxmodels` does not pay for it. docs/sweeps.md has the details.
"""
