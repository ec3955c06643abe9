"""What each image's project wheel is made of: its own packages and only the commands they provide."""

import tomllib

from scripts import images

PYPROJECT = (images.ROOT / "pyproject.toml").read_text()


def scripts_of(text: str) -> dict[str, str]:
    return tomllib.loads(text)["project"]["scripts"]


def test_each_image_keeps_only_the_commands_its_packages_provide():
    every = scripts_of(PYPROJECT)
    for name, image in images.IMAGES.items():
        kept = scripts_of(images.image_pyproject(PYPROJECT, image.packages))
        assert kept == {cmd: target for cmd, target in every.items() if target.split(".")[0] in image.packages}, name
        assert kept or name == "dashboard", f"{name} ships no command"  # the dashboard runs `streamlit run`
    assert set(scripts_of(images.image_pyproject(PYPROJECT, ("bridge", "client", "common")))) == {"serversinc-webhook"}


def test_the_rest_of_pyproject_is_untouched():
    kept = tomllib.loads(images.image_pyproject(PYPROJECT, ("services", "common")))
    whole = tomllib.loads(PYPROJECT)
    assert kept["tool"] == whole["tool"] and kept["build-system"] == whole["build-system"]
    assert {k: v for k, v in kept["project"].items() if k != "scripts"} == \
        {k: v for k, v in whole["project"].items() if k != "scripts"}


def test_no_image_ships_a_client_with_the_control_plane_or_the_agent():
    shipped = {name: set(image.packages) for name, image in images.IMAGES.items()}
    assert shipped["api"] == {"services", "common"}
    assert shipped["agent"] == {"agent", "common"}
    assert shipped["webhook"] == {"bridge", "client", "common"}
    assert shipped["dashboard"] == {"dashboard", "client", "common"}
    assert all("cli" not in packages for packages in shipped.values())
