"""Chunked rendering of many videos on a Ray cluster (``vqdsr render``; needs ``vsvqdsr[farm]``).

``planning`` (pure chunk planning), ``cuts`` (scene starts like ``Upscale``), ``jobs`` (what a worker
runs), ``join`` (concat + mux), ``report``, ``render`` (the driver). Ray is imported only by
``render.render``.
"""
