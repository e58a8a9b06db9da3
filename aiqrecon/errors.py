"""Error pages. A 400 caused by core.inputs.BadInput says what was wrong (its message names the
field and quotes at most a short piece of the input); any other 400 stays generic."""

from django.shortcuts import render

from core.inputs import BadInput


def bad_request(request, exception):
    message = str(exception) if isinstance(exception, BadInput) else ""
    return render(request, "400.html", {"message": message}, status=400)
