"""Learning from outcomes: training sets from snapshots + outcomes, retraining, champion/challenger.

Contracts:

* ``training_data.training_set(...)``: a wave's snapshot joined with its attributed outcomes (closed windows).
* ``retraining.retrain(...)``: fit a challenger, judge it against the champion on later waves,
  promote by margin (``orchestrator.scoring.registry``).

May import: ``orchestrator.success``, ``orchestrator.scoring`` and below.
"""
