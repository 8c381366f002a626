"""The README's commands stay true: every `python -m qcalo...` line names a module that exists,
options its --help lists, presets and config files that exist and config keys that load; the
docs' links point at files that exist."""

import contextlib
import importlib
import io
import re
import shlex
from pathlib import Path

import pytest

from qcalo.config import load_config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def commands() -> list[list[str]]:
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            for part in line.split("&&"):
                words = shlex.split(part)
                if "-m" in words and words[words.index("-m") + 1].startswith("qcalo"):
                    out.append(words[words.index("-m") + 1 :])
    return out


def test_the_readme_is_short_and_has_commands():
    assert len(README.splitlines()) <= 300
    assert len(commands()) >= 25


@pytest.mark.parametrize("words", commands(), ids=lambda w: " ".join(w)[:60])
def test_each_command_is_understood(words):
    module, args = words[0], words[1:]
    main = importlib.import_module(module).main
    text = io.StringIO()
    with contextlib.redirect_stdout(text), pytest.raises(SystemExit):
        main(["--help"] if module != "qcalo.checkpoint" else [args[0], "--help"])
    options = {a.split("=")[0] for a in args if a.startswith("--")}
    missing = {o for o in options if o not in text.getvalue()}
    assert not missing, f"{module} has no option {missing}"
    if module == "qcalo.train":
        value = {a: args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--generator", "--config")}
        sets = args[args.index("--set") + 1 :] if "--set" in args else []
        config = value.get("--config")
        if config is not None:
            assert (ROOT / config).is_file(), config
        load_config(value.get("--generator"), ROOT / config if config else None, sets)


def test_links_in_the_docs_point_at_files():
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text()):
            if not target.startswith("http"):
                assert (doc.parent / target).exists(), f"{doc.name} links to {target}"
