"""
### **Extras**
* Pass a python function to an Exec node.
* Put Markdown in stdout/stderr.
* Call a function of this file from a node's shell command.
"""

# typing.List, as Conducto's users (Python 3.8) wrote it: the dispatcher must read it too.
# ruff: noqa: UP006
import datetime
import typing

import utils

import k8sco as co


def no_types(name, thing):
    """No types: both arrive as `str`s."""
    print(f"Hello {name}, goodnight {thing}. ({type(name).__name__})")


def simple_types(price: float, count=3, show_sum=True):
    """Default values and type hints give each argument its type."""
    total = 0
    for i in range(count):
        total += price
        if show_sum:
            print(f"Item #{i}: ${price}. Total: {total}")
        else:
            print(f"Item #{i}: ${price}.")


def complex_types(prices: typing.List[float], date: datetime.date):
    """Lists of basic types and dates."""
    tomorrow = date + datetime.timedelta(days=1)
    print(f"Today is {date}. Tomorrow is {tomorrow}.")
    print(f"Total: {sum(prices)}")


def display(dataset):
    """Called by a node's shell command, as `python extras.py display --dataset=...`."""
    print(f"<ConductoMarkdown>\n**{dataset}**: {len(dataset)} letters\n</ConductoMarkdown>")


def exec_python() -> co.Parallel:
    """
    A python function and its arguments in an Exec node instead of a shell command; node
    parameters are set as fields.
    """
    output = co.Parallel(image=utils.IMG, doc=co.util.magic_doc())

    output["no_types"] = co.Exec(no_types, "world", thing="moon")
    output["no_types"].doc = co.util.magic_doc(func=no_types)

    output["simple_types"] = co.Exec(simple_types, 3.5, count=2, show_sum=True)
    output["simple_types"].doc = co.util.magic_doc(func=simple_types)

    today = datetime.date(2020, 2, 28)
    output["complex_types"] = co.Exec(complex_types, [3.5, 7.5, 10.0], date=today)
    output["complex_types"].doc = co.util.magic_doc(func=complex_types)
    return output


def markdown_in_stdout() -> co.Exec:
    """Markdown in stdout: `<ConductoMarkdown>...</ConductoMarkdown>`."""
    return co.Exec("python code/plot.py", image=utils.IMG, doc=co.util.magic_doc())


def commands() -> co.Serial:
    """Functions of this file, from shell commands."""
    with co.Serial(image=utils.IMG, doc=co.util.magic_doc()) as output:
        output["Display"] = co.Parallel()
        for dataset in ["Heating", "Cooling Days"]:
            output["Display"][dataset] = co.Exec(f"python extras.py display --dataset='{dataset}'")
        output["help"] = co.Exec("python extras.py --help")
    return output


def examples() -> co.Parallel:
    ex = co.Parallel(doc=__doc__)
    ex["exec_python"] = exec_python()
    ex["markdown_in_stdout"] = markdown_in_stdout()
    ex["commands"] = commands()
    return ex


if __name__ == "__main__":
    print(__doc__)
    co.Image.share_directory("CONDUCTO_DEMO", "..")
    co.main(default=examples)
