# This file is generated from notebooks/01_attention.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["add_to_class"]


# cell 7
def add_to_class(cls):
    """Decorator: add the function below to `cls` as a method, so a class can grow across cells.

    `make export` puts each such method back into the class body of the generated module.

    >>> class Greeter:
    ...     pass
    >>> @add_to_class(Greeter)
    ... def hello(self):
    ...     return "hello"
    >>> Greeter().hello()
    'hello'
    """

    def add(method):
        function = getattr(method, "__func__", getattr(method, "fget", method))
        setattr(cls, function.__name__, method)
        return method

    return add
