"""Maps the folder core/ to the import package `carme` (with every subpackage of core/).

Everything else about the distribution is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    package_dir={"carme": "core"},
    packages=["carme", *(f"carme.{name}" for name in find_packages("core"))],
)
