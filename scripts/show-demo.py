"""Print the demo endpoints (`make run`)."""

import json
import sys
from pathlib import Path

data_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "ceg-data")
demo = json.loads((data_dir / "demo.json").read_text())
print(f"ceg demo: {data_dir.resolve() / 'demo.json'}")
for key in ("http", "https"):
    print(f"  {key:<8} {demo[key]}")
for name, value in demo.items():
    if isinstance(value, dict) and any(k in value for k in ("directory", "url", "base", "cep")):
        endpoint = value.get("directory") or value.get("url") or value.get("base") or value.get("cep")
        print(f"  {name:<8} {endpoint}")
print(f"  root CA  {demo['root_ca_pem']}")
