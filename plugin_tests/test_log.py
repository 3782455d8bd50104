"""The package logger (``vsvqdsr.log``): one stderr handler, ``vsvqdsr: ...`` lines, never stdout;
the CLI's global ``-v`` / ``-q``."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from conftest import ROOT, VENV_BIN
from test_eval_verdict import _full

from vsvqdsr.cli.main import build_parser, main
from vsvqdsr.log import LOGGER_NAME, get_logger, progress_enabled, set_verbosity


def test_lines_go_to_stderr_only_in_the_package_format(capsys):
    log = get_logger("vsvqdsr.training.somewhere")
    try:
        set_verbosity()
        log.info("train-vsr: resuming run at iteration 3")
        log.warning("adapt: the degrader's own error is larger")
        log.debug("not shown at the default level")
        cap = capsys.readouterr()
        assert cap.out == ""
        assert cap.err == ("vsvqdsr: train-vsr: resuming run at iteration 3\n"
                           "vsvqdsr: warning: adapt: the degrader's own error is larger\n")
        set_verbosity(verbose=1)
        log.debug("shown under -v")
        set_verbosity(quiet=1)
        log.info("hidden under -q")
        assert not progress_enabled()
        log.warning("still shown under -q")
        set_verbosity(quiet=2)
        log.warning("hidden under -qq")
        cap = capsys.readouterr()
        assert cap.out == ""
        assert cap.err == "vsvqdsr: shown under -v\nvsvqdsr: warning: still shown under -q\n"
    finally:
        set_verbosity()
    assert progress_enabled()


def test_one_handler_that_does_not_propagate():
    import importlib

    import vsvqdsr.log as mod

    importlib.reload(mod)  # importing again installs nothing twice
    logger = logging.getLogger(LOGGER_NAME)
    ours = [h for h in logger.handlers if h.get_name() == "vsvqdsr-stderr"]  # pytest may add its own
    assert len(ours) == 1 and ours[0].stream is sys.stderr and not logger.propagate
    assert get_logger("vsvqdsr.farm.render").name == "vsvqdsr.farm.render"
    assert get_logger("adapt").name == "vsvqdsr.adapt"


def test_global_flags_come_before_two_word_verbs():
    from vsvqdsr.cli.main import _verbs, join_verb

    verbs = _verbs(build_parser())
    assert join_verb(["-q", "eval", "build", "--out", "s"], verbs) == ["-q", "eval build", "--out", "s"]
    args = build_parser().parse_args(join_verb(["-vv", "eval", "build", "--out", "s"], verbs))
    assert (args.log_verbose, args.log_quiet, args.out) == (2, 0, "s")


def _card_files(tmp_path):
    res, card = tmp_path / "results.json", tmp_path / "m.json"
    res.write_text(json.dumps(_full(7.4)))
    card.write_text(json.dumps({"name": "ours"}))
    return [str(res), "ours", str(card), "--command", "vqdsr eval x"]


def test_quiet_cli_run_says_nothing(tmp_path, capsys):
    files = _card_files(tmp_path)
    assert main(["eval", "card", *files]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.startswith("vsvqdsr: eval card: ") and cap.err.count("\n") == 1
    assert main(["-q", "eval", "card", *files]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["eval", "card", *files]) == 0  # the next run is not quiet
    assert capsys.readouterr().err.startswith("vsvqdsr: eval card: ")


def test_quiet_cli_process_says_nothing(tmp_path):
    """The real entry point in its own process: ``-q`` leaves stderr empty, and no log line reaches stdout."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    files = _card_files(tmp_path)
    run = [str(VENV_BIN / "vqdsr")]
    loud = subprocess.run([*run, "eval", "card", *files], capture_output=True, text=True, env=env, timeout=120)
    quiet = subprocess.run([*run, "-q", "eval", "card", *files], capture_output=True, text=True, env=env, timeout=120)
    assert loud.returncode == quiet.returncode == 0, loud.stderr + quiet.stderr
    assert loud.stdout == quiet.stdout == ""
    assert loud.stderr.startswith("vsvqdsr: eval card: ") and "benchmark_rank 1" in loud.stderr
    assert quiet.stderr == ""
