"""The README's Python examples run as written (in a fresh interpreter, as a user would run them)."""
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    script = tmp_path / "readme_examples.py"
    body = "\n".join("    " + line for block in blocks for line in block.splitlines())
    script.write_text(f"def main():\n{body}\n\n\nif __name__ == '__main__':\n    main()\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "net.cir").read_text().startswith("* eqprop-hw")
