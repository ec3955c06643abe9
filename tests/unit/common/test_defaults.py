"""common.defaults: the one table of default addresses and the shell form scripts/lib/setup.sh evaluates."""

import shlex
import subprocess
import sys
from pathlib import Path

from common import defaults


def test_home_is_the_environment_s_else_the_checkout_s():
    assert defaults.serversinc_home({"SERVERSINC_HOME": "/srv/x"}) == Path("/srv/x")
    assert defaults.serversinc_home({}) == defaults.REPO_ROOT / ".serversinc"


def test_shell_assignments_take_overrides_and_quote_them():
    text = defaults.shell_assignments({"SERVERSINC_API": "10.0.0.1:1", "SERVERSINC_HOME": "/tmp/it's here"})
    values = dict(line.split("=", 1) for line in text.splitlines())
    assert values["API"] == "10.0.0.1:1"
    assert shlex.split(values["SERVERSINC_HOME"]) == ["/tmp/it's here"]
    assert values["AGENT"] == defaults.DEFAULT_AGENT
    assert values["WEBHOOK"] == defaults.DEFAULT_WEBHOOK
    assert values["DASHBOARD_PORT"] == str(defaults.DASHBOARD_PORT)


def test_the_script_form_is_what_a_shell_evaluates():
    script = Path(defaults.__file__)
    out = subprocess.run(["bash", "-c", f'eval "$({shlex.quote(sys.executable)} {shlex.quote(str(script))})"; echo "$API $AGENT"'],
                         capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout
    assert out.split() == [defaults.DEFAULT_API, defaults.DEFAULT_AGENT]
