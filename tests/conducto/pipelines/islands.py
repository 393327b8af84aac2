"""
## Islands
A pipeline built by assigning children inside `with` blocks.
"""

import k8sco as co


def hello() -> co.Exec:
    """Hello World"""
    return co.Exec("echo Hello world!", image="bash:5.0", doc=__doc__)


def islands() -> co.Serial:
    """
    ### Simple Pipeline Construction
    Some steps happen in parallel, others in serial.
    """
    with co.Serial(doc=co.util.magic_doc(), image="bash:5.0", tags=["demo_simple"]) as pipeline:
        pipeline["hawaii"] = co.Exec("echo big island")
        with co.Parallel(name="maui_county") as maui_county:
            maui_county["maui"] = co.Exec("echo valley isle")
            maui_county["lanai"] = co.Exec("echo pineapple isle")
        pipeline["oahu"] = co.Exec("echo gathering place")
        with co.Serial(name="kauai_county") as kauai_county:
            kauai_county["kauai"] = co.Exec("echo garden isle")
            kauai_county["niihau"] = co.Exec("echo forbidden isle")
    return pipeline


if __name__ == "__main__":
    co.Image.register_directory("CONDUCTO_DEMO", ".")
    co.main()
