"""Learning from outcomes: training sets from snapshots + outcomes, retraining, champion/challenger.

Contracts:

* ``training_data.training_frame(...)``: a wave's snapshot joined with its attributed outcomes (closed
  windows); with ``passed_over=True`` also the customers the wave did not contact.
* ``evaluation.compare(...)``: what targetings (challenger, champion, random) would have achieved on
  logged, randomised waves: IPS and doubly robust estimates with bootstrap intervals.
* ``retraining.retrain(...)``: fit a challenger, judge it against the champion on later waves (off-policy
  for uplift kinds), promote it when better with confidence (``orchestrator.scoring.registry``).

May import: ``orchestrator.success``, ``orchestrator.scoring`` and below.
"""
