"""
### **First Pipeline**
`co.Exec`, `co.Serial` and `co.Parallel`, `co.Image` and `co.main()`.
"""

import k8sco as co


def build_and_test() -> co.Serial:
    image = co.Image(image="python:3.12-slim", copy_dir="./code")
    with co.Serial(image=image, doc=co.util.magic_doc()) as pipeline:
        with co.Parallel(name="build"):
            co.Exec("sh build.sh auth", name="auth")
            co.Exec("sh build.sh app", name="app")
        with co.Serial(name="test"):
            co.Exec("python test.py auth", name="auth")
            co.Exec("python test.py app", name="app")
    return pipeline


if __name__ == "__main__":
    print(__doc__)
    co.Image.share_directory("CONDUCTO_DEMO", "..")
    co.main(default=build_and_test)
