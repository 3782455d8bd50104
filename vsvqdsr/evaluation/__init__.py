"""The quality benchmark (``vqdsr eval``): benchmark sets, methods, metrics and reports.

* :mod:`.build`    -- making a set: real ffmpeg degradation chains, the manifest;
* :mod:`.sources`  -- the benchmark's clean clips (``vqdsr eval build``);
* :mod:`.dataset`  -- loading a set and checking its manifest; the training-set exclusion;
* :mod:`.methods`  -- the compared upscalers (resizers, single-image SR, VSR models);
* :mod:`.metrics`  -- PSNR-Y, SSIM, SSIMULACRA2, ColorVideoVDP, temporal flicker, NIQE;
* :mod:`.options`  -- default metric options (light: read by the CLI parser);
* :mod:`.runner`   -- one evaluation run with its cache;
* :mod:`.report`   -- Markdown/JSON tables, charts and the crop sheet;
* :mod:`.verdict`  -- WIN/LOSS against the baselines, model-card figures and the default-model rank.
"""
