"""Full-text search: one mechanism for every module that opts in, on three engines.

A module opts in with ``features: {full_text: {fields: [name, description]}}``: the first
field is the title, the others the body (``html`` fields are indexed as their text). Its
records get an index entry kept in step by the record service, in the save's own
transaction (``crbm_after_save`` / ``crbm_after_delete``: one executemany per batch), and
rows without one (a module that just opted in, rows written around the record service)
are indexed after every schema sync (``backfill``, keyset batches) — no nightly rebuild.

Why one text pipeline in Python in front of three engines: what a user types and what a
record holds are folded and cut into words here (``words``: NFKD, case folded, accents
and combining marks dropped, the letters NFKD keeps whole spelled out as quick search does,
then runs of letters and digits), and the engine indexes those words separated by spaces.
So accents, ``ß``, punctuation, e-mail addresses and host names behave the same on every
database, and user text never reaches an engine as query syntax: each word is quoted (or
is a bare run of letters and digits), FTS operators, quotes, ``*``, ``NEAR``, ``-`` and
parentheses are just text, a long query is cut to ``MAX_WORDS`` words.

- SQLite: an FTS5 table ``<table>__fts`` (title, body; ``unicode61 remove_diacritics 2``)
  whose rowid is a number from ``<table>__fti`` (record id -> number), ranked by
  ``bm25`` with the title weighing ``TITLE_WEIGHT`` times the body.
- PostgreSQL: ``<table>__fts`` (record id, ``tsvector`` of the ``simple`` configuration,
  title weight A, body B) with a GIN index, ranked by ``ts_rank``; the folding is ours
  (no ``unaccent`` extension needed, and the ``simple`` configuration does no stemming,
  right for records written in several languages).
- MariaDB: ``<table>__fts`` (record id, title, body) with an InnoDB ``FULLTEXT`` index
  made without stopwords, boolean mode, ranked by its relevance; words shorter than the
  server's ``innodb_ft_min_token_size`` (3) are not indexed, so they are dropped from the
  query (the last word stays as a prefix).

The query (``search``) reads the index joined to the module's table with ``deleted`` false
and the user's list predicate (``AccessControl.predicate``, its row-by-row form) in the same
SQL, so no hit, snippet or count comes from a record the user may not list. Snippets are
made here from the hit's own fields, escaped first and then marked (``<mark>``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import html as html_lib
import re
import threading
import unicodedata
from dataclasses import dataclass, field

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy.dialects.mysql import match as mysql_match

from core.kernel.errors import N_
from core.kernel.fields import _UNDECOMPOSED
from core.kernel.hooktypes import ModuleFeature

FEATURE = "full_text"
TEXT_TYPES = ("name", "text", "textarea", "html", "email", "url", "phone")
TITLE_WEIGHT = 10.0
MAX_QUERY_CHARS = 1_000  # of a query's text: a 10,000-character query is answered
MAX_WORDS = 16
MAX_WORD = 64  # characters: longer runs are not words a user types (nor PostgreSQL's limit)
MAX_INDEXED = 200_000  # characters of a record's body indexed
MAX_TITLE = 10_000  # and of its title
COUNT_CAP = 1_000  # per module: "1,000+"
SNIPPET = 160  # characters around the first hit
_WORD = re.compile(r"[^\W_]+")
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.DOTALL | re.IGNORECASE)


def fold(text) -> str:
    """Case folded, accents and combining marks dropped, ø/æ/ł... spelled out."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", str(text or ""))
                                 .casefold().translate(_UNDECOMPOSED))
    return "".join(c for c in text if not unicodedata.combining(c))


def words(text, limit: int | None = None) -> list[str]:
    """The words of ``text`` as indexed and searched (folded runs of letters and digits)."""
    return [w for w in _WORD.findall(fold(text[:limit] if limit else text)) if len(w) <= MAX_WORD]


def html_text(value) -> str:
    """An html field's text: tags (and scripts' and styles' content) out, entities read."""
    return html_lib.unescape(_TAG.sub(" ", str(value or "")))


# -- the feature -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    title: str
    body: tuple[str, ...]
    html: frozenset[str]

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.title, *self.body)


def spec_of(module) -> Spec | None:
    options = module.features.get(FEATURE)
    if not isinstance(options, dict) or not options.get("fields"):
        return None
    names = list(options["fields"])
    return Spec(names[0], tuple(names[1:]), frozenset(
        n for n in names if n in module.fields and module.fields[n].type.name == "html"))


class FullTextFeature(ModuleFeature):
    """``features.full_text: {fields: [title, body...]}``: checked here; its index is the
    search app's (``ensure``, ``refresh``, ``remove``, ``backfill``)."""
    name = FEATURE
    label = N_("full-text search")

    def check(self, module, options, registry):
        names = options.get("fields") if isinstance(options, dict) else None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            return [("fields", "give the fields to index: [title field, body fields...]")]
        problems = []
        for i, name in enumerate(names):
            f = module.fields.get(name)
            if f is None:
                problems.append((f"fields[{i}]", f"field {name!r} does not exist"))
            elif not f.stored or f.type.name not in TEXT_TYPES:
                problems.append((f"fields[{i}]", (f"field {name!r} ({f.type.name}) cannot be "
                                                  f"indexed: only {', '.join(TEXT_TYPES)} fields")))
            elif name in names[:i]:
                problems.append((f"fields[{i}]", f"field {name!r} is named twice"))
        return problems


def modules(site) -> list:
    """The modules that opt in, in the registry's order."""
    return [m for m in site.registry.modules.values()
            if spec_of(m) is not None and m.table in site.tables.tables]


# -- the index's tables, per engine ----------------------------------------------------------

def _names(module) -> tuple[str, str]:
    return f"{module.table}__fts"[:63], f"{module.table}__fti"[:63]


_ready_lock = threading.Lock()


def _ready(site) -> set:
    cache = site.__dict__.get("_fulltext_ready")
    if cache is None:
        with _ready_lock:
            cache = site.__dict__.setdefault("_fulltext_ready", set())
    return cache


def is_ready(site, conn, module) -> bool:
    """Whether the module's index exists (kept per site once seen: tables are never
    dropped under a running site)."""
    ready = _ready(site)
    if module.name in ready:
        return True
    name = _names(module)[0]
    if sa.inspect(conn).has_table(name):
        ready.add(module.name)
        return True
    return False


def prime(site) -> None:
    """Note the opted-in modules whose index exists (one statement, as the site boots), so
    a save does not ask."""
    wanted = {_names(m)[0]: m.name for m in modules(site)}
    if not wanted:
        return
    try:
        with site.engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
    except sa.exc.DBAPIError:  # no database yet: a save asks (is_ready)
        return
    _ready(site).update(name for table, name in wanted.items() if table in present)


def ensure(site, conn, module) -> None:
    """Create the module's index if missing (idempotent)."""
    fts, fti = _names(module)
    dialect = conn.dialect.name
    if dialect == "sqlite":
        conn.exec_driver_sql(f'CREATE TABLE IF NOT EXISTS "{fti}" (n INTEGER PRIMARY KEY, '
                             f'record_id VARCHAR(64) NOT NULL UNIQUE)')
        conn.exec_driver_sql(f'CREATE VIRTUAL TABLE IF NOT EXISTS "{fts}" USING fts5('
                             f"title, body, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4')")
    elif dialect == "postgresql":
        conn.exec_driver_sql(f'CREATE TABLE IF NOT EXISTS "{fts}" (record_id VARCHAR(64) '
                             f'PRIMARY KEY, doc TSVECTOR NOT NULL)')
        index = f"ix_{fts}_doc"[:63]
        conn.exec_driver_sql(f'CREATE INDEX IF NOT EXISTS "{index}" ON "{fts}" USING GIN (doc)')
    else:
        if not sa.inspect(conn).has_table(fts):
            conn.exec_driver_sql("SET SESSION innodb_ft_enable_stopword = OFF")
            try:
                conn.exec_driver_sql(
                    f"CREATE TABLE `{fts}` (record_id VARCHAR(64) NOT NULL PRIMARY KEY, "
                    f"title TEXT NOT NULL, body MEDIUMTEXT NOT NULL, FULLTEXT KEY "
                    f"`ftx_{fts}`(title, body)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
                    f"COLLATE=utf8mb4_bin")
            finally:  # the pooled connection as it was
                conn.exec_driver_sql("SET SESSION innodb_ft_enable_stopword = ON")
    _ready(site).add(module.name)


def _doc(spec: Spec, record) -> tuple[str, str]:
    """A record's indexed title and body: their words, space-separated."""
    title = " ".join(words(str(record.get(spec.title) or ""), MAX_TITLE))
    parts = []
    for name in spec.body:
        value = record.get(name)
        if value:
            parts.append(html_text(value) if name in spec.html else str(value))
    return title, " ".join(words("\n".join(parts), MAX_INDEXED))


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def refresh(site, conn, module, records: list) -> None:
    """Index ``records`` (dicts with ``id`` and the spec's fields): replace their entries."""
    spec = spec_of(module)
    if spec is None or not records or not is_ready(site, conn, module):
        return
    docs = [(str(r["id"]), *_doc(spec, r)) for r in records]
    fts, fti = _names(module)
    dialect = conn.dialect.name
    if dialect == "sqlite":
        conn.exec_driver_sql(f'INSERT OR IGNORE INTO "{fti}" (record_id) VALUES (?)',
                             [(d[0],) for d in docs])
        number = {}
        for part in _chunks([d[0] for d in docs]):
            marks = ",".join("?" * len(part))
            number.update((rid, n) for n, rid in conn.exec_driver_sql(
                f'SELECT n, record_id FROM "{fti}" WHERE record_id IN ({marks})',
                tuple(part)).all())
            conn.exec_driver_sql(
                f'DELETE FROM "{fts}" WHERE rowid IN (SELECT n FROM "{fti}" '
                f'WHERE record_id IN ({marks}))', tuple(part))
        conn.exec_driver_sql(f'INSERT INTO "{fts}" (rowid, title, body) VALUES (?, ?, ?)',
                             [(number[d[0]], d[1], d[2]) for d in docs])
    elif dialect == "postgresql":  # one statement for the lot: arrays, unnest
        conn.execute(sa.text(
            f'INSERT INTO "{fts}" (record_id, doc) SELECT u.id, '
            f"setweight(to_tsvector('simple', u.title), 'A') || "
            f"setweight(to_tsvector('simple', u.body), 'B') "
            f"FROM unnest(CAST(:ids AS text[]), CAST(:titles AS text[]), "
            f"CAST(:bodies AS text[])) AS u(id, title, body) "
            f"ON CONFLICT (record_id) DO UPDATE SET doc = excluded.doc"),
            {"ids": [d[0] for d in docs], "titles": [d[1] for d in docs],
             "bodies": [d[2] for d in docs]})
    else:
        conn.execute(sa.text(
            f"INSERT INTO `{fts}` (record_id, title, body) VALUES (:id, :title, :body) "
            f"ON DUPLICATE KEY UPDATE title = VALUES(title), body = VALUES(body)"),
            [{"id": d[0], "title": d[1], "body": d[2]} for d in docs])


def remove(site, conn, module, ids: list[str]) -> None:
    """Drop the entries of ``ids`` (deleted records)."""
    if spec_of(module) is None or not ids or not is_ready(site, conn, module):
        return
    fts, fti = _names(module)
    quote = conn.dialect.identifier_preparer.quote
    for part in _chunks([str(i) for i in ids]):
        params = {f"i{n}": v for n, v in enumerate(part)}
        marks = ", ".join(f":i{n}" for n in range(len(part)))
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text(f'DELETE FROM "{fts}" WHERE rowid IN (SELECT n FROM "{fti}" '
                                 f"WHERE record_id IN ({marks}))"), params)
            conn.execute(sa.text(f'DELETE FROM "{fti}" WHERE record_id IN ({marks})'), params)
        else:
            conn.execute(sa.text(f"DELETE FROM {quote(fts)} WHERE record_id IN ({marks})"),
                         params)


def on_save(site, module, batch, conn) -> None:
    """Every record of the batch, in one go: a ``crbm_before_save`` may have set an
    indexed field without it being among the changes (the documents plugin's text of a
    new revision), so the changes are not trusted to say what to index."""
    if spec_of(module) is not None:
        refresh(site, conn, module, [c.record for c in batch])


SPECS = "crbm_fulltext_specs"


def tables(metadata: sa.MetaData) -> None:
    """The fields each module's index was made from: another list empties it, and the
    backfill indexes every record again."""
    sa.Table(SPECS, metadata, sa.Column("module", sa.String(60), primary_key=True),
             sa.Column("fields", sa.String(2000), nullable=False))


def _clear(conn, module) -> None:
    quote = conn.dialect.identifier_preparer.quote
    for name in _names(module) if conn.dialect.name == "sqlite" else _names(module)[:1]:
        conn.exec_driver_sql(f"DELETE FROM {quote(name)}")


def backfill(site, batch: int = 2_000) -> int:
    """Create each opted-in module's index if missing (emptied if its fields changed) and
    index its live rows that have no entry, by keyset batches of ``batch`` (each its own
    transaction). Returns how many rows were indexed."""
    done = 0
    specs = site.tables.tables.get(SPECS)
    for module in modules(site):
        spec = spec_of(module)
        table = site.tables.tables[module.table]
        with site.engine.begin() as conn:
            ensure(site, conn, module)
            if specs is not None:
                signature = ",".join(spec.fields)
                stored = conn.execute(sa.select(specs.c.fields)
                                      .where(specs.c.module == module.name)).scalar()
                if stored != signature:
                    if stored is not None:
                        _clear(conn, module)
                        conn.execute(specs.delete().where(specs.c.module == module.name))
                    conn.execute(specs.insert().values(module=module.name, fields=signature))
        fts, fti = _names(module)
        has = sa.table(fti if site.engine.dialect.name == "sqlite" else fts,
                       sa.column("record_id"))
        last = ""
        while True:
            with site.engine.begin() as conn:
                rows = conn.execute(
                    sa.select(table.c.id, *(table.c[n] for n in spec.fields if n in table.c))
                    .where(table.c.id > last, table.c.deleted.is_(False),
                           ~sa.exists().where(has.c.record_id == table.c.id))
                    .order_by(table.c.id).limit(batch)).mappings().all()
                refresh(site, conn, module, [dict(r) for r in rows])
            done += len(rows)
            if len(rows) < batch:
                break
            last = rows[-1]["id"]
    return done


# -- the query -------------------------------------------------------------------------------

@dataclass
class Hit:
    module: str
    id: str
    title: str
    snippet: Markup
    score: float
    url: str = ""

    def as_json(self) -> dict:
        return {"module": self.module, "id": self.id, "title": self.title,
                "snippet": str(self.snippet), "url": self.url}


@dataclass
class Results:
    text: str
    terms: list[str]
    hits: list[Hit] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # module -> hits (COUNT_CAP + 1: more)
    cap: int = COUNT_CAP

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def terms_of(text) -> list[str]:
    """The words searched for: at most ``MAX_WORDS`` of the text's first
    ``MAX_QUERY_CHARS`` characters, each once; the last one is a prefix."""
    return list(dict.fromkeys(words(str(text or "")[:MAX_QUERY_CHARS])))[:MAX_WORDS]


def _min_token(conn) -> int:
    try:
        return int(conn.exec_driver_sql("SELECT @@innodb_ft_min_token_size").scalar() or 3)
    except sa.exc.DBAPIError:
        return 3


def _match(conn, module, table, terms: list[str]):
    """(FROM clause joined to the module's table, WHERE of the match, score column: higher
    is better, the order the index is read in for the ranking window or None)."""
    fts, fti = _names(module)
    dialect = conn.dialect.name
    if dialect == "sqlite":
        q = " ".join(f'"{w}"' for w in terms[:-1]) + f' "{terms[-1]}"*'
        f = sa.table(fts, sa.column("rowid"), sa.column("title"), sa.column("body"))
        m = sa.table(fti, sa.column("n"), sa.column("record_id"))
        source = f.join(m, m.c.n == f.c.rowid).join(table, table.c.id == m.c.record_id)
        where = sa.literal_column(f'"{fts}"').op("MATCH")(q)
        score = -sa.func.bm25(sa.literal_column(f'"{fts}"'), TITLE_WEIGHT, 1.0)
        return source, where, score, f.c.rowid.desc()  # the newest entries first
    if dialect == "postgresql":
        q = " & ".join(f"'{w}'" for w in terms[:-1] + [terms[-1]]) + ":*"
        f = sa.table(fts, sa.column("record_id"), sa.column("doc"))
        tsq = sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"), q)
        source = f.join(table, table.c.id == f.c.record_id)
        return source, f.c.doc.op("@@")(tsq), sa.func.ts_rank(f.c.doc, tsq), None
    shortest = _min_token(conn)
    kept = [w for w in terms[:-1] if len(w) >= shortest]
    q = " ".join(f'+"{w}"' for w in kept) + f" +{terms[-1]}*"
    f = sa.table(fts, sa.column("record_id"), sa.column("title"), sa.column("body"))
    against = mysql_match(f.c.title, f.c.body, against=q).in_boolean_mode()
    source = f.join(table, table.c.id == f.c.record_id)
    return source, against, against, None


def searchable(site, user, names=None) -> list:
    """The opted-in modules ``user`` may list (of ``names`` when given)."""
    out = []
    for module in modules(site):
        if names and module.name not in names:
            continue
        if site.access.can(user, module, "list") and site.access.mode(user, module) != "disabled":
            out.append(module)
    return out


def _statement(site, conn, user, module, terms):
    """(FROM, WHERE: the match, live and visible to ``user``, score, window order, table)."""
    table = site.tables.tables[module.table]
    source, where, score, order = _match(conn, module, table, terms)
    return source, sa.and_(where, _visible(site, conn, user, module, table)), score, order, table


def _visible(site, conn, user, module, table):
    """Live and visible to ``user``: on SQLite checked on each row the rest of the query
    found, never an index to start from. Its planner (no statistics) would start from the
    owner's index: run the FTS query once per visible record (2 s at 20,000 notes, where
    reading the matches first is 10 ms), or read all of a user's records to find the eight
    hits whose text makes the snippets (300 ms at 1,000,000 notes, for 1 ms by id)."""
    visible = sa.and_(table.c.deleted.is_(False),
                      site.access.predicate(user, module, "list", table, True))
    if conn.dialect.name == "sqlite":
        visible = sa.func.coalesce(visible, sa.false()) == sa.true()
    return visible


def ranked_select(module, source, where, score, order, table, n: int, window: int):
    """The best ``n`` of the first ``window`` visible matches (newest first where the
    engine reads its index in order), each row with ``n``: how many the window holds —
    the module's count, capped. One scan of the matches gives both, and every match is
    ranked up to the count's cap: a word in a third of a million records costs what a
    word in a thousand does, for ranking as for counting."""
    first = sa.select(table.c.id.label("id"), score.label("score")) \
        .select_from(source).where(where)
    first = (first.order_by(order) if order is not None else first).limit(window).subquery()
    return sa.select(sa.literal(module.name).label("module"), first.c.id, first.c.score,
                     sa.func.count().over().label("n")) \
        .order_by(first.c.score.desc(), first.c.id).limit(n)


@contextlib.contextmanager
def _index_first(conn):
    """On PostgreSQL, the GIN index always: under the ranking window's LIMIT its planner
    otherwise hopes a sequential scan of the index table finds the matches early (a miss
    read all of it: 32 ms at 50,000 notes, 1 ms from the index). And a plan made for the
    query's own words and user, never the generic plan of a prepared statement (psycopg
    prepares a statement run five times): that one does not know how common the words
    are, and read a restricted user's every record instead of the matches (86 ms for 8 ms
    at 1,000,000 notes). Reads are in autocommit, so session settings, put back after."""
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.exec_driver_sql("SET enable_seqscan = off; SET plan_cache_mode = force_custom_plan")
    try:
        yield
    finally:
        conn.exec_driver_sql("RESET enable_seqscan; RESET plan_cache_mode")


def search(site, user, text, modules=None, limit: int = 20, offset: int = 0,
           cap: int = COUNT_CAP) -> Results:
    """Hits of ``text`` in the opted-in modules ``user`` may list (``modules``: only
    those names), best first, ``limit`` from ``offset``, with per-module counts (capped
    at ``cap`` + 1) — all read through the user's access predicate, deleted records
    never. One statement for the counts and the ranked ids of every module (the best of
    the first ``cap`` + 1 visible matches of each: ``ranked_select``), one per module
    for the snippets' text."""
    terms = terms_of(text)
    if getattr(user, "access_epoch", 0) is None:  # read once here, not on each grant lookup
        user = dataclasses.replace(user, access_epoch=site.access.epoch())
    results = Results(str(text or "")[:MAX_QUERY_CHARS], terms, cap=cap)
    limit, offset = max(0, min(int(limit), 200)), max(0, min(int(offset), 10_000))
    if not terms:
        return results
    chosen = searchable(site, user, set(modules) if modules else None)
    with site.engine.connect() as conn, _index_first(conn):
        chosen = [m for m in chosen if is_ready(site, conn, m)]
        if not chosen:
            return results
        parts = []
        for module in chosen:
            top = ranked_select(module, *_statement(site, conn, user, module, terms),
                                max(1, offset + limit), cap + 1).subquery()
            parts.append(sa.select(top.c.module, top.c.id, top.c.score, top.c.n))
        rows = conn.execute(parts[0] if len(parts) == 1 else sa.union_all(*parts)).all()
        for name, _id, _score, n in rows:
            results.counts[name] = int(n)
        if not limit:
            return results
        rows = sorted(((r[0], r[1], r[2]) for r in rows),
                      key=lambda r: (-(r[2] or 0), r[0], r[1]))[offset:offset + limit]
        texts = _texts(site, conn, user, rows)
    for name, record_id, score in rows:
        record = texts.get((name, record_id))
        if record is None:
            continue
        module = site.registry.module(name)
        results.hits.append(_hit(module, record, terms, score))
    return results


def _texts(site, conn, user, rows) -> dict:
    """The hits' indexed fields, one statement per module, through the predicate again."""
    by_module: dict[str, list[str]] = {}
    for name, record_id, _ in rows:
        by_module.setdefault(name, []).append(record_id)
    out = {}
    for name, ids in by_module.items():
        module = site.registry.module(name)
        spec = spec_of(module)
        table = site.tables.tables[module.table]
        stmt = sa.select(table.c.id, *(table.c[n] for n in spec.fields if n in table.c)) \
            .where(table.c.id.in_(ids), _visible(site, conn, user, module, table))
        for r in conn.execute(stmt).mappings():
            out[(name, r["id"])] = dict(r)
    return out


def _hit(module, record, terms, score) -> Hit:
    spec = spec_of(module)
    title = str(record.get(spec.title) or "").strip() or record["id"]
    body = " ".join(html_text(record.get(n)) if n in spec.html else str(record.get(n) or "")
                    for n in spec.body)
    return Hit(module.name, record["id"], title, snippet(body, terms) or _opening(body),
               float(score or 0), f"/m/{module.name}/{record['id']}")


def _opening(body: str) -> Markup:
    """The body's start, escaped: the snippet of a record found by its title."""
    body = " ".join(body[:SNIPPET * 4].split())
    if len(body) <= SNIPPET:
        return escape(body)
    cut = body.rfind(" ", 0, SNIPPET)
    return escape(body[:cut if cut > SNIPPET // 2 else SNIPPET]) + Markup(" …")


def _matches(token: str, terms: list[str]) -> bool:
    folded = fold(token)
    return any(folded == t for t in terms[:-1]) or folded.startswith(terms[-1]) \
        if terms else False


_TOKEN = re.compile(r"[^\W_]+")


def highlight(text: str, terms: list[str]) -> Markup:
    """``text`` escaped, the words that match marked (``<mark>``)."""
    out, at = [], 0
    for m in _TOKEN.finditer(text):
        if _matches(m.group(), terms):
            out.append(escape(text[at:m.start()]))
            out.append(Markup("<mark>%s</mark>") % m.group())
            at = m.end()
    out.append(escape(text[at:]))
    return Markup("").join(out)


def snippet(body: str, terms: list[str], size: int = SNIPPET) -> Markup:
    """About ``size`` characters of ``body`` around its first matching word, marked;
    empty when the body has none."""
    body = " ".join(body[:MAX_INDEXED].split())
    first = next((m for m in _TOKEN.finditer(body) if _matches(m.group(), terms)), None)
    if first is None:
        return Markup("")
    start = max(0, first.start() - size // 3)
    if start:
        space = body.find(" ", start)
        start = space + 1 if 0 <= space < first.start() else start
    end = min(len(body), start + size)
    if end < len(body):
        space = body.rfind(" ", first.end(), end)
        end = space if space > first.end() else end
    return Markup("%s%s%s") % ("… " if start else "", highlight(body[start:end], terms),
                               " …" if end < len(body) else "")
