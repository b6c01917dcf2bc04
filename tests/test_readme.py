"""The README's quickstart runs as pasted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_two_setup_commands() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    assert blocks[0].strip().startswith("pip install -e")
    assert blocks[1].strip() == 'pip install -e ".[dev]" && pytest'


def test_readme_quickstart_runs(tmp_path: Path) -> None:
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)  # type: ignore[union-attr]
    script = tmp_path / "quickstart.py"
    script.write_text(code)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "found 3 sources" in r.stdout


def test_readme_functional_api_example_runs(tmp_path: Path) -> None:
    text = README.read_text()
    section = text[text.index("## Functional API"):text.index("## Differences from LangGraph")]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    code += (
        "\nassert weather.get_state('w1').values == 'Oslo 21C, Lima 21C'"
        "\nprint(weather.invoke(['Oslo'], thread_id='w1'))"
        "\nprint(weather.invoke(Command(resume='no'), thread_id='w1'))\n"
    )
    script = tmp_path / "functional.py"
    script.write_text(code)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("{'__interrupt__': [Interrupt(value={'approve': 'Oslo 21C'}")
    assert out[1] == "Oslo 21C, Lima 21C"  # not approved: the previous text, kept with entrypoint.final


def test_readme_loops_example_runs(tmp_path: Path) -> None:
    text = README.read_text()
    section = text[text.index("### Loops: for-each and while"):text.index("### Subgraphs and multi-agent teams")]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    script = tmp_path / "loops.py"
    script.write_text(code)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[1.5, 2.0] 1 11.5 ['shipping', 'shipping']"
