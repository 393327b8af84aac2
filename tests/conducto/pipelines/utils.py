# A shared image, imported by the pipelines as Conducto's demos import their utils.py.
import k8sco as co

IMG = co.Image(
    dockerfile="docker/Dockerfile.util",
    context=".",
    copy_dir=".",
    reqs_py=["k8sco", "PTable"],
)
