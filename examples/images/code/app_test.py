"""The application's tests: examples/images/images.py runs them in this folder."""

import pathlib


def test_config() -> None:
    config = pathlib.Path("config.txt").read_text().split()  # relative: this folder
    assert config == ["threads=4"], config


if __name__ == "__main__":
    test_config()
    print("app tests: 1 passed")
