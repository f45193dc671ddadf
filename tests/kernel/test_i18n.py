"""The locale layer with real Babel/CLDR data: exact strings, per locale."""
import datetime as dt
import threading
from decimal import Decimal
from zoneinfo import ZoneInfo

import jinja2
import pytest
from babel import dates
from babel.messages.pofile import read_po

from core import i18n_tools
from core.apps.field_types.types import BUILTIN_TYPES as KERNEL_TYPES
from core.kernel import i18n
from core.kernel.i18n import Formatter, Preferences, translations, validate_preferences
from core.kernel.registry import FieldDef

ROOT = i18n_tools.ROOT

NNBSP, NBSP = "\u202f", "\xa0"  # CLDR's narrow and plain no-break spaces
LATE = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)  # already 2 March in Sydney


def fmt(language="en", **prefs):
    return Formatter(Preferences(language=language, **prefs))


@pytest.mark.parametrize(("language", "date", "datetime"), [
    ("en", "Mar 1, 2026", f"Mar 1, 2026, 11:30{NNBSP}PM"),
    ("en_GB", "1 Mar 2026", "1 Mar 2026, 23:30"),
    ("de_DE", "01.03.2026", "01.03.2026, 23:30"),
    ("fr", "1 mars 2026", "1 mars 2026, 23:30"),
])
def test_dates_per_locale(language, date, datetime):
    f = fmt(language)
    assert f.date(LATE.date()) == date
    assert f.datetime(LATE) == datetime
    assert f.datetime(LATE.replace(tzinfo=None)) == datetime  # naive is UTC


def test_datetimes_are_shown_in_the_users_timezone():
    sydney = fmt("en_GB", timezone="Australia/Sydney")
    assert sydney.datetime(LATE) == "2 Mar 2026, 10:30"
    assert sydney.date(LATE) == "2 Mar 2026"  # the day it is for the user
    assert sydney.time(LATE) == "10:30"
    assert fmt("en", timezone="America/New_York").datetime(LATE) == f"Mar 1, 2026, 6:30{NNBSP}PM"


def test_explicit_patterns_and_styles():
    f = fmt("en", date_format="dd/MM/yyyy", time_format="HH:mm", timezone="Europe/Paris")
    assert f.date(dt.date(2026, 11, 23)) == "23/11/2026"
    assert f.datetime(LATE) == "02/03/2026, 00:30"
    assert f.time(dt.time(9, 5)) == "09:05"
    assert fmt("de_DE", date_format="yyyy-MM-dd").date(dt.date(2026, 11, 23)) == "2026-11-23"
    assert fmt("en", date_format="long", time_format="h:mm a").datetime(LATE) == "March 1, 2026, 11:30 PM"
    assert fmt("fr", date_format="short").datetime(LATE) == "01/03/2026 23:30"  # fr's own glue


@pytest.mark.parametrize(("language", "number", "fixed", "percent"), [
    ("en", "1,234,567.891", "1,234,567.89", "12.5%"),
    ("en_GB", "1,234,567.891", "1,234,567.89", "12.5%"),
    ("de_DE", "1.234.567,891", "1.234.567,89", f"12,5{NBSP}%"),
    ("fr", f"1{NNBSP}234{NNBSP}567,891", f"1{NNBSP}234{NNBSP}567,89", f"12,5{NBSP}%"),
])
def test_numbers_per_locale(language, number, fixed, percent):
    f = fmt(language)
    assert f.number(Decimal("1234567.891")) == number
    assert f.number(1234567.891) == number
    assert f.number(Decimal("1234567.891"), digits=2) == fixed
    assert f.percent(Decimal("12.5000")) == percent  # 12.5 means 12.5 %, trailing zeros dropped


def test_number_details():
    f = fmt("en")
    assert f.number(1234) == "1,234"
    assert f.number(Decimal("100.0000")) == "100"
    assert f.number(Decimal("0.000001")) == "0.000001"  # not rounded to 3 places
    assert f.number(Decimal(2), digits=3) == "2.000"
    assert f.number(None) == f.percent(None) == f.currency(None, "USD") == f.date(None) == ""
    assert fmt("en", number_locale="de_DE").number(Decimal("1234.56")) == "1.234,56"
    assert fmt("en", number_locale="de_DE").date(LATE) == "Mar 1, 2026"  # dates stay English


@pytest.mark.parametrize(("language", "usd", "eur", "jpy", "bhd"), [
    ("en", "$1,234.50", "€1,234.50", "¥1,235", "BHD1,234.500"),
    ("en_GB", "US$1,234.50", "€1,234.50", "JP¥1,235", "BHD1,234.500"),
    ("de_DE", f"1.234,50{NBSP}$", f"1.234,50{NBSP}€", f"1.235{NBSP}¥", f"1.234,500{NBSP}BHD"),
    ("fr", f"1{NNBSP}234,50{NBSP}$US", f"1{NNBSP}234,50{NBSP}€", f"1{NNBSP}235{NBSP}JPY",
     f"1{NNBSP}234,500{NBSP}BHD"),
])
def test_currency_per_locale(language, usd, eur, jpy, bhd):
    f = fmt(language)
    amount = Decimal("1234.5")
    assert [f.currency(amount, c) for c in ("USD", "EUR", "JPY", "BHD")] == [usd, eur, jpy, bhd]


def test_currency_digits():
    f = fmt()
    assert [f.currency_digits(c) for c in ("JPY", "USD", "EUR", "BHD")] == [0, 2, 2, 3]


def test_local_input_round_trip():
    f = fmt(timezone="Europe/Paris")
    assert f.to_local_input(LATE) == "2026-03-02T00:30"
    assert f.from_local_input("2026-03-02T00:30") == LATE
    assert f.from_local_input("2026-03-02T00:30:00") == LATE
    assert f.from_local_input("  ") is None and f.to_local_input(None) == ""
    with pytest.raises(ValueError, match="is not a date and time"):
        f.from_local_input("tomorrow-ish")


def test_local_input_across_new_york_spring_forward():
    f = fmt(timezone="America/New_York")  # 2026-03-08: 02:00 EST jumps to 03:00 EDT
    before = f.from_local_input("2026-03-08T01:59")
    assert before == dt.datetime(2026, 3, 8, 6, 59, tzinfo=dt.UTC)
    assert f.to_local_input(before) == "2026-03-08T01:59"
    after = f.from_local_input("2026-03-08T03:00")
    assert after == dt.datetime(2026, 3, 8, 7, 0, tzinfo=dt.UTC)
    assert f.to_local_input(after) == "2026-03-08T03:00"
    # 02:30 does not exist that night: read with the old offset, i.e. 03:30 on the new clock
    gap = f.from_local_input("2026-03-08T02:30")
    assert gap == dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.UTC)
    assert f.to_local_input(gap) == "2026-03-08T03:30"


def test_preferences_fall_back_and_validate():
    garbage = {"language": "xx_YY", "timezone": "Mars/Olympus", "date_format": "Jj",
               "time_format": "'unclosed", "number_locale": 42, "colour": "blue"}
    assert Preferences.from_dict(garbage) == Preferences()
    assert Preferences.from_dict(None) == Preferences()
    assert validate_preferences(garbage) == {
        "language": "Unknown language or locale", "timezone": "Unknown time zone",
        "date_format": "Not a valid date format", "time_format": "Not a valid time format",
        "number_locale": "Unknown language or locale"}
    good = {"language": "de-ch", "timezone": "Europe/Zurich", "date_format": "dd.MM.yyyy",
            "time_format": "HH:mm 'Uhr'", "number_locale": ""}
    assert validate_preferences(good) == {}
    prefs = Preferences.from_dict(good)
    assert prefs == Preferences("de_CH", "Europe/Zurich", "dd.MM.yyyy", "HH:mm 'Uhr'", None)
    assert Preferences.from_dict(prefs.to_dict()) == prefs
    assert validate_preferences({"date_format": "HH:mm"}) == {"date_format": "Not a valid date format"}
    assert validate_preferences({"date_format": "ddd"}) == {"date_format": "Not a valid date format"}
    # only CLDR's fields at CLDR's widths, whatever the installed Babel makes of others
    # (Babel 2.19 prints "ddd" as "023")
    for bad in ("ddd", "dd.MM.yyyyy", "MMMMMM", "EEEEEEE", "dd.MM.yy ll", "UUUU", "yyyy-MM-dd'T'HH",
                "'d'", "dd 'of MM", "HH:mm", "ggg"):
        assert validate_preferences({"date_format": bad}) == \
            {"date_format": "Not a valid date format"}, bad
    for bad in ("HHH:mm", "HH:mmm", "h:mm aaaaaa", "dd HH:mm", "OO", "vv"):
        assert validate_preferences({"time_format": bad}) == \
            {"time_format": "Not a valid time format"}, bad
    for good_date in ("d 'de' MMMM 'de' y", "yyyy年M月d日", "EEEE d MMMM y", "dd.MM.yy",
                      "'Q'Q yyyy", "d MMM ''yy"):
        assert validate_preferences({"date_format": good_date}) == {}, good_date
    for good_time in ("h 'o''clock' a", "HH:mm:ss.SSS zzzz", "h:mm B", "HH:mm xxx"):
        assert validate_preferences({"time_format": good_time}) == {}, good_time
    assert Formatter(Preferences(timezone="Nowhere")).tz.key == "UTC"  # hand-built too


def test_every_field_a_format_may_use_formats_with_babel():
    day = dt.datetime(2026, 11, 23, 14, 30, 5, tzinfo=ZoneInfo("Europe/Paris"))
    for fields, show in ((i18n.DATE_FIELDS, dates.format_date),
                         (i18n.TIME_FIELDS, dates.format_time)):
        for letter, widths in fields.items():
            for width in widths:
                assert show(day, letter * width, locale="fr").strip(), letter * width


def test_choices_and_timezones():
    from core.web.auth import date_format_choices, time_format_choices
    assert ("dd/MM/yyyy", "23/11/2026") in date_format_choices()
    assert ("HH:mm", "14:30") in time_format_choices()
    assert "Europe/Paris" in i18n.AVAILABLE_TIMEZONES and "UTC" in i18n.AVAILABLE_TIMEZONES
    assert i18n.AVAILABLE_TIMEZONES == sorted(i18n.AVAILABLE_TIMEZONES)


def write_po(folder, language, pairs):
    path = folder / language / "LC_MESSAGES" / "crbm.po"
    path.parent.mkdir(parents=True)
    body = "".join(f'msgid "{k}"\nmsgstr "{v}"\n\n' for k, v in pairs.items())
    path.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n' + body,
                    encoding="utf-8")


def test_translations_from_po_files(tmp_path):
    write_po(tmp_path, "fr", {"Log in": "Se connecter", "Yes": "Oui"})
    assert translations("fr", [tmp_path]).gettext("Log in") == "Se connecter"
    assert translations("fr_CA", [tmp_path]).gettext("Log in") == "Se connecter"  # falls back
    assert translations("fr", [tmp_path]).gettext("Unknown") == "Unknown"
    assert translations("de", [tmp_path]).gettext("Log in") == "Log in"
    assert i18n.available_languages([tmp_path]) == [("en", "English"), ("fr", "français")]

    later = tmp_path / "pack"
    write_po(later, "fr", {"Log in": "Connexion"})
    write_po(later, "fr_CA", {"Yes": "Ouais"})
    both = translations("fr_CA", [tmp_path, later])
    assert both.gettext("Log in") == "Connexion"  # later dirs override earlier ones
    assert both.gettext("Yes") == "Ouais"  # the regional catalog wins over the language's
    assert translations("fr", [tmp_path, later]).gettext("Yes") == "Oui"


def test_jinja_templates_translate_per_render(tmp_path):
    write_po(tmp_path, "fr", {"Log in": "Se connecter", "Hello %(name)s": "Bonjour %(name)s"})
    env = jinja2.Environment(autoescape=True)
    i18n.install_jinja(env)
    page = env.from_string("{% trans %}Log in{% endtrans %}|{{ _('Log in') }}|"
                           "{% trans name=who %}Hello {{ name }}{% endtrans %}")
    french = Formatter(Preferences(language="fr"), extra_dirs=[tmp_path])
    assert page.render(fmt=french, who="<Zoé>") == "Se connecter|Se connecter|Bonjour &lt;Zoé&gt;"
    assert page.render(who="Al") == "Log in|Log in|Hello Al"  # no formatter: English

    po = tmp_path / "fr" / "LC_MESSAGES" / "crbm.po"
    plural = ('msgid "%(num)s record"\nmsgid_plural "%(num)s records"\n'
              'msgstr[0] "%(num)s fiche"\nmsgstr[1] "%(num)s fiches"\n')
    po.write_text(po.read_text(encoding="utf-8") + plural, encoding="utf-8")
    i18n.reload_translations()
    french = Formatter(Preferences(language="fr"), extra_dirs=[tmp_path])
    count = env.from_string("{% trans num=n %}{{ num }} record{% pluralize %}{{ num }} records{% endtrans %}")
    # no Plural-Forms header: two forms are singular ("one" in CLDR: 0 and 1 in French)
    # and plural, whatever Babel's own table says (2.19 gives French three forms)
    assert [count.render(fmt=french, n=n) for n in (0, 1, 3, 1_000_000)] == \
        ["0 fiche", "1 fiche", "3 fiches", "1000000 fiches"]


PLURAL = ('msgid "%(num)s record"\nmsgid_plural "%(num)s records"\n'
          'msgstr[0] "%(num)s fiche"\nmsgstr[1] "%(num)s fiches"\n')


def record_counts(folder, language, header=""):
    po = folder / language / "LC_MESSAGES" / "crbm.po"
    po.parent.mkdir(parents=True)
    po.write_text(f'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n{header}\n'
                  + PLURAL, encoding="utf-8")
    catalog = translations(language, [folder])
    return [catalog.ngettext("%(num)s record", "%(num)s records", n) % {"num": n}
            for n in (0, 1, 2, 5)]


def test_plural_forms_follow_the_catalogs_header(tmp_path):
    # the shipped French catalog says nplurals=2; plural=(n > 1)
    shipped = translations("fr", [ROOT / "personality_packs" / "lang_fr" / "locale"])
    locked = [f"This account is locked after too many failed attempts. Try again in "
              f"%(num)d {word}." for word in ("minute", "minutes")]
    assert [shipped.ngettext(*locked, n) % {"num": n} for n in (0, 1, 2)] == [
        "Ce compte est verrouillé après trop de tentatives infructueuses. Réessayez dans "
        f"{n} minute{'s' if n > 1 else ''}." for n in (0, 1, 2)]
    # a header wins over any rule of the language's
    header = '"Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n'
    assert record_counts(tmp_path / "a", "fr", header) == \
        ["0 fiches", "1 fiche", "2 fiches", "5 fiches"]
    # without one, the forms written decide: two are CLDR's "one" and the rest (Polish
    # has four forms in CLDR, French three since Babel 2.19)
    assert record_counts(tmp_path / "b", "fr") == ["0 fiche", "1 fiche", "2 fiches", "5 fiches"]
    assert record_counts(tmp_path / "c", "pl") == ["0 fiches", "1 fiche", "2 fiches", "5 fiches"]


def field(name, type_name, **spec):
    return FieldDef(name, KERNEL_TYPES[type_name], {"type": type_name, **spec})


def test_field_display(tmp_path):
    write_po(tmp_path, "fr", {"Yes": "Oui", "No": "Non"})
    en, fr = fmt("en", timezone="Australia/Sydney"), Formatter(Preferences("fr"), [tmp_path])
    check = field("do_not_call", "checkbox")
    assert (en.field(check, True), en.field(check, False), fr.field(check, True)) == ("Yes", "No", "Oui")
    stage = field("stage", "dropdown", options="stage_dom")
    labels = {"won": "Closed won", "lost": "Closed lost"}
    assert en.field(stage, "won", options=labels) == "Closed won"
    assert en.field(stage, "won") == "won"
    assert en.field(field("tags", "multiselect"), ["won", "new"], options=labels) == "Closed won, new"
    price = field("price", "currency", currency="EUR")
    assert en.field(price, Decimal("1234.500000"), {"price_currency": "JPY"}) == "¥1,235"
    assert en.field(price, Decimal("1234.5")) == "€1,234.50"
    assert en.field(field("cost", "currency"), Decimal(3)) == "$3.00"
    assert en.field(field("total", "calculated", format="currency"), Decimal(5)) == "$5.00"
    assert en.field(field("ratio", "calculated", format="percentage"), Decimal("7.5")) == "7.5%"
    assert en.field(field("n", "calculated", format="integer"), 12000) == "12,000"
    assert en.field(field("amount", "decimal", scale=2), Decimal("1234.5")) == "1,234.50"
    assert en.field(field("amount", "decimal"), Decimal("1234.5000")) == "1,234.5"
    assert en.field(field("share", "percentage"), Decimal("12.5000")) == "12.5%"
    assert en.field(field("when", "date"), dt.date(2026, 3, 1)) == "Mar 1, 2026"
    assert en.field(field("at", "datetime"), LATE) == f"Mar 2, 2026, 10:30{NNBSP}AM"
    assert en.field(field("note", "html"), "<b>hi</b>") == "<b>hi</b>"  # templates escape
    assert en.field(field("name", "name"), "Acme") == "Acme"
    for type_name in ("text", "checkbox", "dropdown", "multiselect", "date", "currency"):
        assert en.field(field("x", type_name), None) == ""
    assert en.field(field("x", "multiselect"), []) == ""


def test_extract_messages_from_the_repository(tmp_path):
    pot = tmp_path / "crbm.pot"
    assert i18n_tools.extract_messages(pot) > 0
    assert 'msgid "Yes"' in pot.read_text(encoding="utf-8")


def test_extract_messages_from_given_sources(tmp_path):
    src = tmp_path / "src"
    (src / "templates").mkdir(parents=True)
    (src / "sample.py").write_text('_("Hello")\nN_("Later")\n', encoding="utf-8")
    (src / "templates" / "page.html").write_text(
        "<p>{% trans %}\n  Hi\n{% endtrans %}</p><button>{{ _('Save') }}</button>", encoding="utf-8")
    pot = tmp_path / "out" / "crbm.pot"
    assert i18n_tools.extract_messages(pot, [src]) == 4
    text = pot.read_text(encoding="utf-8")
    for message in ("Hello", "Later", "Hi", "Save"):  # "Hi" trimmed, as install_jinja renders it
        assert f'msgid "{message}"' in text


def test_extraction_holds_the_labels_of_module_and_dropdown_yaml(tmp_path):
    pot = tmp_path / "crbm.pot"
    i18n_tools.extract_messages(pot, [ROOT / "tests" / "plugins"])
    with pot.open("rb") as f:
        catalog = read_po(f)
    where = {m.id: m.locations for m in catalog if m.id}

    def line_of(path: str, text: str) -> tuple[str, int]:
        lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
        return path, next(n for n, line in enumerate(lines, 1) if text in line)

    # module and tab group labels, a field's label, one made from a field's name, a layout
    # section, a dropdown option, each located in its file
    module, dropdowns = ("tests/plugins/kitchen_sink/modules/gadgets.yaml",
                         "tests/plugins/kitchen_sink/dropdowns/gadgets.yaml")
    assert line_of(module, "label: Gadgets") in where["Gadgets"]  # a relationship says it too
    assert where["Tests"] == [line_of(module, "tab_group: Tests")]
    assert line_of(module, "summary:") in where["Summary"]
    assert "Widget" in where and "Overview" in where
    assert where["Toy"] == [line_of(dropdowns, "label: Toy")]
    assert "gadget_kind_dom" not in where and "tool" not in where  # names and values are not
    assert "Date created" not in where  # the system fields' labels live in core/

    i18n_tools.extract_messages(pot)  # the default sources: core/, plugins/, cli.py
    with pot.open("rb") as f:
        catalog = read_po(f)
    ids = {m.id for m in catalog}
    assert {"Accounts", "Account name", "Customer", "Overview", "Date created", "Assigned to",
            "%(label)s: city", "%(label)s currency"} <= ids
    # a section an overlay adds to another plugin's layouts (products' extends/accounts.yaml),
    # and a text written next to an f-string (an f-string's inside is not read)
    assert {"Sales terms", "Leave this empty"} <= ids
    assert "Gadgets" not in ids  # the test plugin is not shipped


def test_labels_follow_the_catalog_activated_in_this_context_only(tmp_path):
    write_po(tmp_path, "fr", {"Accounts": "Comptes"})
    french = i18n.translations("fr", [tmp_path])
    assert i18n.label("Accounts") == "Accounts"  # nothing activated: English
    token = i18n.activate(french)
    try:
        assert i18n.label("Accounts") == "Comptes"
        assert i18n.label("") == ""  # not the catalog's header
        seen = []
        other = threading.Thread(target=lambda: seen.append(i18n.label("Accounts")))
        other.start()
        other.join()
        assert seen == ["Accounts"]  # another thread has its own context
    finally:
        i18n.deactivate(token)
    assert i18n.label("Accounts") == "Accounts"


def test_registry_labels_options_and_sections_in_the_active_language(site, tmp_path):
    write_po(tmp_path, "fr", {"Gadgets": "Bidules", "Gadget": "Bidule", "Tool": "Outil",
                              "Overview": "Vue d'ensemble", "Summary": "Résumé",
                              "Address": "Adresse", "%(label)s: city": "%(label)s : ville",
                              "Tests": "Essais", "Widget": "Machin"})
    gadgets = site.registry.module("gadgets")
    kind, city = gadgets.fields["kind"], gadgets.fields["address_city"]
    english = (gadgets.label, gadgets.fields["summary"].label, city.label,
               site.registry.choices(kind)[0], gadgets.layouts["detail"][0]["label"])
    assert english == ("Gadgets", "Summary", "Address: city", ("tool", "Tool"), "Overview")
    token = i18n.activate(i18n.translations("fr", [tmp_path]))
    try:
        assert (gadgets.label, gadgets.label_singular, gadgets.tab_group) == \
            ("Bidules", "Bidule", "Essais")
        assert (gadgets.fields["summary"].label, city.label) == ("Résumé", "Adresse : ville")
        assert gadgets.fields["widget_id"].label == "Machin"  # a label made from the name
        assert site.registry.choices(kind)[0] == ("tool", "Outil")
        assert site.registry.option_labels("gadgets")["kind"]["tool"] == "Outil"
        assert site.registry.option_labels("gadgets")["parent_type"]["gadgets"] == "Bidule"
        assert gadgets.layouts["detail"][0] == {**gadgets.definition["layouts"]["detail"][0],
                                                "label": "Vue d'ensemble"}
        assert gadgets.layouts["edit"][0]["rows"] == [["name", "kind"], ["toy_age", None]]
    finally:
        i18n.deactivate(token)
    assert (gadgets.label, site.registry.choices(kind)[0]) == ("Gadgets", ("tool", "Tool"))
    assert gadgets.definition["label"] == "Gadgets"  # the definition itself never changes


def test_update_catalog_merges_new_messages_and_says_what_changed(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text('_("Keep")\n_("Hello %(name)s!")\n_("Log out")\n',
                              encoding="utf-8")
    po = tmp_path / "fr" / "LC_MESSAGES" / "crbm.po"
    assert i18n_tools.update_catalog(po, [src]) == ["new: 'Keep'", "new: 'Hello %(name)s!'",
                                              "new: 'Log out'"]
    text = po.read_text(encoding="utf-8").replace('msgid "Keep"\nmsgstr ""',
                                                  'msgid "Keep"\nmsgstr "Garder"')
    text = text.replace('msgid "Hello %(name)s!"\nmsgstr ""',
                        'msgid "Hello %(name)s!"\nmsgstr "Bonjour %(name)s !"')
    po.write_text(text, encoding="utf-8")
    assert i18n_tools.catalog_problems(po, ["Keep", "Hello %(name)s!"]) == []

    (src / "a.py").write_text('_("Keep")\n_("Hello %(name)s!!")\n_("New")\n', encoding="utf-8")
    assert i18n_tools.update_catalog(po, [src]) == [
        "fuzzy (check the old translation): 'Hello %(name)s!!'", "new: 'New'",
        "removed: 'Log out'"]
    assert i18n_tools.catalog_problems(po, i18n_tools.extract_catalog([src])) == [
        "fuzzy: 'Hello %(name)s!!'", "empty: 'New'"]
    assert i18n.translations("fr", [tmp_path]).gettext("Keep") == "Garder"
