"""Recording a cell's step once and replaying it over a sequence without the tape (``nn.Recurrent``'s fast path).

* ``record``   runs the step on stand-ins and writes down its ops (:class:`~.record.StepTrace`);
               says :class:`~.record.Untraceable` when the step is not a fixed sequence of ops
* ``graph``    two recordings at two batch sizes made into one graph with the batch size open
* ``plan``     which ops run once per sequence, once over all steps' rows, or at every step
* ``fuse``     which runs of elementwise ops are compiled together (numba), and running them
* ``codegen``  the source of a compiled run's forward and backward loops
* ``replay``   :class:`~.replay.TracedRecurrence`: the whole layer and direction as one autograd node

``nn.recurrent.traced`` ties them together and decides when to fall back to the tape.
"""
