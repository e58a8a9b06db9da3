"""prepared: a queryset compiled to SQL once per shape, then run with new values.

Django compiles every queryset to SQL each time it runs (resolving lookups, joins, columns,
quoting: about 1 ms of CPU for an ordinary filter, several for a grouped one), which is most of
what a hot path's small queries cost. A Prepared keeps the queryset's spelling: `build(*args)`
makes it as usual, is called once per shape (the database, the types of the arguments, the
lengths of list arguments) with stand-in values, and the SQL it compiles to is kept with the
positions of the stand-ins among its parameters. Each call then puts the real values in those
positions and runs the kept SQL through Django's own iterable of the queryset (model instances,
values, values_list, flat, with converters), so the rows are what the queryset would give.

Arguments: ints, strings, None (a shape of its own: the builder is called with None), or lists
of ints or strings. A stand-in must reach the SQL parameters unchanged (exact and `in` lookups on
integer, key and text columns; once or more, as in the parts of a union); a field that converts
the value is refused when the shape is first compiled, not run wrongly. Lists longer
than LONGEST, empty lists and querysets with prefetch_related run as plain querysets.
"""

import threading
from collections.abc import Callable

from django.db import connections
from django.db.models import QuerySet
from django.db.transaction import TransactionManagementError

LONGEST = 32  # a longer list compiles anew each time: one shape per length would pile up
_INT_BASE = -8_070_450_532_247_928_000  # stand-in ints: far below any id or amount


class NotPreparable(TypeError):
    """The queryset's parameters do not carry the arguments unchanged; run it as a queryset."""


class Prepared:
    def __init__(self, build: Callable[..., QuerySet]):
        self.build = build
        self._shapes: dict = {}
        self._lock = threading.Lock()

    def __call__(self, *args) -> list:
        """The rows of build(*args), as list(build(*args)) would give them."""
        shape = tuple(_kind(arg) for arg in args)
        if "long" in shape or "empty" in shape:
            return list(self.build(*args))
        kept = self._shapes.get(shape)
        if kept is None:
            kept = self._compile(shape)
            if kept is None:
                return list(self.build(*args))
            with self._lock:
                self._shapes[shape] = kept
        queryset, compiler, sql, template, positions = kept
        params = list(template)
        for index, argument, element in positions:
            value = args[argument]
            params[index] = value if element is None else value[element]
        return _run(queryset, compiler, sql, params)

    def _compile(self, shape):
        stand_ins = _stand_ins(shape)
        queryset = self.build(*stand_ins)
        if queryset._prefetch_related_lookups:
            return None
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        wanted = {}
        for argument, value in enumerate(stand_ins):
            if isinstance(value, list):
                wanted.update((item, (argument, element)) for element, item in enumerate(value))
            elif value is not None:
                wanted[value] = (argument, None)
        positions = [
            (index, *wanted[param])
            for index, param in enumerate(params)
            if type(param) in (int, str) and param in wanted
        ]
        if {position[1:] for position in positions} != set(wanted.values()):
            raise NotPreparable(
                f"{self.build.__qualname__}: an argument does not reach the SQL parameters "
                "unchanged"
            )
        return queryset, compiler, sql, tuple(params), positions


def prepared(build: Callable[..., QuerySet]) -> Prepared:
    """Decorate a function that builds a queryset from its arguments."""
    return Prepared(build)


def _kind(value) -> tuple:
    if value is None:
        return ("none",)
    if isinstance(value, bool):
        raise NotPreparable("booleans are not prepared arguments")
    if isinstance(value, (int, str)):
        return (type(value).__name__,)
    if isinstance(value, (list, tuple)):
        if not value:
            return "empty"
        if len(value) > LONGEST:
            return "long"
        kinds = {type(item) for item in value}
        if kinds not in ({int}, {str}):
            raise NotPreparable("a list argument holds ints or strings, one kind")
        return ("list", kinds.pop().__name__, len(value))
    raise NotPreparable(f"{type(value).__name__} is not a prepared argument")


def _stand_ins(shape) -> list:
    """Distinct stand-in values for a shape, the same every time."""
    values, count = [], 0

    def one(kind):
        nonlocal count
        count += 1
        return _INT_BASE - count if kind == "int" else f"\x00prepared-{count}\x00"

    for kind in shape:
        if kind[0] == "none":
            values.append(None)
        elif kind[0] == "list":
            values.append([one(kind[1]) for _ in range(kind[2])])
        else:
            values.append(one(kind[0]))
    return values


def _run(queryset: QuerySet, compiler, sql: str, params: list) -> list:
    """Run the kept SQL with these parameters through the queryset's own iterable: copies of
    the kept queryset, query and compiler per call (threads share the kept ones), the compiler
    on this thread's connection."""
    mine = _shallow(compiler)
    mine.connection = connections[queryset.db]
    if queryset.query.select_for_update and mine.connection.get_autocommit():
        # what the compiler says when it compiles a locking read outside a transaction
        raise TransactionManagementError(
            "select_for_update cannot be used outside of a transaction."
        )
    mine.as_sql = lambda *_args, **_kwargs: (sql, params)
    query = _shallow(queryset.query)
    query.get_compiler = lambda *_args, **_kwargs: mine
    rows = _shallow(queryset)
    rows._query = query  # the property setter would make a values_list a values()
    return list(rows._iterable_class(rows, chunked_fetch=False))


def _shallow(obj):
    """A copy sharing obj's attributes (copy.copy would pickle a QuerySet: run it)."""
    twin = obj.__class__.__new__(obj.__class__)
    twin.__dict__.update(obj.__dict__)
    return twin
