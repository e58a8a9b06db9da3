"""Form pieces every screen shares."""

from django import forms

# en-GB dates as people type them; ISO too (links and bookmarks made by the app use it).
DATE_INPUT_FORMATS = ["%d/%m/%Y", "%d/%m/%y", "%Y-%m-%d"]


class DateInputGB(forms.DateInput):
    """A date typed as dd/mm/yyyy. Not <input type=date>: browsers lay that out in their own
    locale (mm/dd/yyyy in an en-US Chromium) whatever the page's language."""

    input_type = "text"

    def __init__(self, attrs=None):
        attrs = {"placeholder": "dd/mm/yyyy", "autocomplete": "off", **(attrs or {})}
        super().__init__(attrs, format="%d/%m/%Y")
