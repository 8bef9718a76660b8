"""One module per action: its guards and the one atomic write that accepts it.

A function here takes the :class:`~compute.service.ComputeService`, the request context and
the server, checks what Nova checks before it answers, and calls ``start_action`` so that the
state change, the instance action and its flow run land in one MULTI before the enqueue.
The flow itself is ``tasks/<same module name>.py``; the HTTP side ``api/views/<same>.py``.
"""
