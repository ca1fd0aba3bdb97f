"""`strata serve` with real Flight SQL clients: the ADBC Flight SQL driver (its DB-API
cursor, parameters, metadata, errors, authentication) and pyarrow's Flight client."""
import csv
import io
import os
import subprocess
import sys
import tempfile

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import ROOT
from flightsql_command import statement_query

STAR_QUERY = """
SELECT p.category, st.region, count(*) AS sales, round(sum(s.amount), 2) AS revenue
FROM raw.sales s
JOIN raw.products p ON s.product_id = p.product_id
JOIN raw.stores st ON s.store_id = st.store_id
GROUP BY p.category, st.region
ORDER BY p.category, st.region
"""


class Server:
    """`strata serve` on a free port, stopped with SIGTERM."""

    def __init__(self, strata, *args):
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [strata.binary, "--warehouse", strata.warehouse, "serve", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("strata serve: listening on "):
            self.proc.kill()
            self.stderr.seek(0)
            raise RuntimeError(f"strata serve did not start: {line!r} {self.stderr.read()}")
        self.address = line.rsplit(" ", 1)[1].strip()
        self.uri = f"grpc://{self.address}"

    def connect(self, **db_kwargs):
        return flight_sql.connect(self.uri, db_kwargs=db_kwargs or None, autocommit=True)

    def stop(self):
        self.proc.terminate()
        code = self.proc.wait(timeout=60)
        self.stderr.seek(0)
        assert code == 0, self.stderr.read()


@pytest.fixture
def server(strata):
    s = Server(strata)
    yield s
    s.stop()


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_star_schema_query_through_the_dbapi_cursor(strata, server):
    expected = csv_rows(strata.run(STAR_QUERY))
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(STAR_QUERY)
        table = cur.fetch_arrow_table()
    assert table.column_names == ["category", "region", "sales", "revenue"]
    got = table.to_pylist()
    assert len(got) == len(expected) > 0
    for g, e in zip(got, expected):
        assert g["category"] == e["category"] and g["region"] == e["region"]
        assert g["sales"] == int(e["sales"])
        assert g["revenue"] == pytest.approx(float(e["revenue"]))


def test_strata_statements_answer_as_in_the_cli(strata, server):
    """strata's own statements (SHOW LINEAGE, SHOW ZONES, CHECK) give the CLI's rows through
    the ADBC driver: both take them from the same parser."""
    strata.run(
        "CREATE TABLE curated.region_sales AS SELECT st.region, count(*) AS sales "
        "FROM raw.sales s JOIN raw.stores st ON s.store_id = st.store_id GROUP BY st.region"
    )
    for sql in [
        "SHOW LINEAGE curated.region_sales",
        "SHOW ZONES",
        "CHECK 'some sales' EXPECT (SELECT count(*) FROM curated.region_sales) > 0",
    ]:
        expected = csv_rows(strata.run(sql))
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute(sql)
            got = cur.fetch_arrow_table().to_pylist()
        as_text = [{k: "" if v is None else str(v) for k, v in row.items()} for row in got]
        assert as_text == expected and len(expected) > 0, sql


def test_parameters(strata, server):
    expected = csv_rows(
        strata.run("SELECT count(*) AS n FROM raw.sales WHERE month = 3 AND store_id = 10")
    )[0]["n"]
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) AS n FROM raw.sales WHERE month = ? AND store_id = ?", (3, 10)
        )
        assert cur.fetchone()[0] == int(expected)
        # The same statement again with other values.
        cur.execute(
            "SELECT count(*) AS n FROM raw.sales WHERE month = ? AND store_id = ?", (4, 11)
        )
        assert cur.fetchone()[0] >= 0
        cur.execute("SELECT name FROM raw.products WHERE category = ? ORDER BY name", ("tea",))
        names = [r[0] for r in cur.fetchall()]
    assert names and all(isinstance(n, str) for n in names)


def test_updates_with_parameters_report_rows(strata, server):
    tea = int(csv_rows(strata.run("SELECT count(*) AS n FROM raw.products WHERE category = 'tea'"))[0]["n"])
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE curated.dim_product AS SELECT * FROM raw.products")
        # A statement sent through execute() runs when its result is read (where it can be
        # cancelled), so its FlightInfo cannot count its rows: the count is its result.
        cur.execute(
            "UPDATE curated.dim_product SET unit_price = unit_price * 2 WHERE category = ?", ("tea",)
        )
        assert cur.fetchone()[0] == tea
        cur.executemany(
            "INSERT INTO curated.dim_product VALUES (?, ?, ?, ?)",
            [(100, "Oolong 50g", "tea", 7.5), (101, "Matcha 30g", "tea", 12.0)],
        )
        cur.execute("DELETE FROM curated.dim_product WHERE product_id >= ?", (100,))
        assert cur.fetchone()[0] == 2
    # The Delta table's history has the writes.
    history = strata.run("DESCRIBE HISTORY curated.dim_product")
    assert "DELETE" in history and "UPDATE" in history


def test_get_objects_info_and_table_schema(server):
    with server.connect() as conn:
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        catalogs = {c["catalog_name"]: c for c in objects}
        assert "strata" in catalogs
        zones = {s["db_schema_name"]: s for s in catalogs["strata"]["catalog_db_schemas"]}
        assert {"raw", "processed", "curated"} <= set(zones)
        tables = {t["table_name"]: t for t in zones["raw"]["db_schema_tables"]}
        assert {"sales", "products", "stores"} <= set(tables)
        columns = [c["column_name"] for c in tables["sales"]["table_columns"]]
        assert "amount" in columns and "month" in columns

        schema = conn.adbc_get_table_schema("products", catalog_filter="strata", db_schema_filter="raw")
        assert schema.names == ["product_id", "name", "category", "unit_price"]

        info = conn.adbc_get_info()
        assert info["vendor_name"] == "strata"
        assert info["vendor_version"]

        types = conn.adbc_get_table_types()
        assert "TABLE" in types


def test_get_objects_honours_patterns_and_types(server):
    """What an IDE's navigator asks: zones and tables by LIKE patterns, columns with their
    types, and the server's SQL info."""
    with server.connect() as conn:
        objects = conn.adbc_get_objects(
            depth="all", catalog_filter="strata", db_schema_filter="r_w", table_name_filter="s%"
        ).read_all().to_pylist()
        zones = objects[0]["catalog_db_schemas"]
        assert [z["db_schema_name"] for z in zones] == ["raw"]
        names = sorted(t["table_name"] for t in zones[0]["db_schema_tables"])
        assert names == ["sales", "stores"]
        sales = next(t for t in zones[0]["db_schema_tables"] if t["table_name"] == "sales")
        assert [c["ordinal_position"] for c in sales["table_columns"]] == list(
            range(1, len(sales["table_columns"]) + 1)
        )

        # No catalog of that name: nothing.
        none = conn.adbc_get_objects(depth="tables", catalog_filter="other").read_all().to_pylist()
        assert none == []

        schemas = conn.adbc_get_objects(depth="db_schemas", db_schema_filter="%r%").read_all().to_pylist()
        assert sorted(z["db_schema_name"] for z in schemas[0]["catalog_db_schemas"]) == ["curated", "processed", "raw"]

        with pytest.raises(adbc_driver_manager.Error):
            conn.adbc_get_table_schema("no_such_table", catalog_filter="strata", db_schema_filter="raw")

        info = conn.adbc_get_info()
        assert info["vendor_name"] == "strata"
        assert info["vendor_version"]


def test_statements_that_cannot_run_are_refused_when_prepared(server):
    with server.connect() as conn, conn.cursor() as cur:
        for sql in ["SELEC", "SELECT 1; SELECT 2", "SELECT * FROM raw.nope"]:
            with pytest.raises(adbc_driver_manager.ProgrammingError) as err:
                cur.adbc_prepare(sql)
            assert "INVALID_ARGUMENT" in str(err.value) or "InvalidArgument" in str(err.value), str(err.value)
        cur.execute("SELECT 42 AS answer")
        assert cur.fetchone()[0] == 42


def test_errors_name_the_problem_and_the_server_carries_on(server):
    with server.connect() as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError) as err:
            cur.execute("SELECT * FROM raw.nope")
        assert "raw.nope" in str(err.value)
        assert "INVALID_ARGUMENT" in str(err.value) or "InvalidArgument" in str(err.value)
        # Settings of the runtime all clients share cannot be changed from a session.
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.execute("SET datafusion.runtime.memory_limit = '1K'")
        assert "PERMISSION_DENIED" in str(err.value) or "PermissionDenied" in str(err.value)
        cur.execute("SELECT 42 AS answer")
        assert cur.fetchone()[0] == 42


def test_token_auth(strata):
    server = Server(strata, "--auth-token", "s3cret")
    try:
        with pytest.raises(adbc_driver_manager.Error) as err:
            with server.connect() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
        assert "UNAUTHENTICATED" in str(err.value).upper()

        with server.connect(username="analyst", password="s3cret") as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM raw.sales")
            assert cur.fetchone()[0] > 0

        header = {adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer s3cret"}
        with server.connect(**header) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone()[0] == 1

        with pytest.raises(adbc_driver_manager.Error):
            with server.connect(username="analyst", password="wrong") as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")

        client = flight.FlightClient(server.uri)
        key, value = client.authenticate_basic_token("analyst", "s3cret")
        options = flight.FlightCallOptions(headers=[(key, value)])
        table = pyarrow_query(client, "SELECT 7 AS seven", options)
        assert table.column("seven").to_pylist() == [7]
    finally:
        server.stop()


def test_read_only(strata):
    server = Server(strata, "--read-only")
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM raw.products")
            assert cur.fetchone()[0] > 0
            with pytest.raises(adbc_driver_manager.Error) as err:
                cur.execute("CREATE TABLE curated.t AS SELECT 1 AS a")
            assert "read-only" in str(err.value)
            # USE changes only the client's own session, so a read-only server runs it.
            cur.execute("USE raw")
            cur.fetchall()
            cur.execute("SELECT count(*) FROM products")
            assert cur.fetchone()[0] > 0
    finally:
        server.stop()


def pyarrow_query(client, sql, options=None):
    descriptor = flight.FlightDescriptor.for_command(statement_query(sql))
    info = client.get_flight_info(descriptor, options)
    tables = [client.do_get(e.ticket, options).read_all() for e in info.endpoints]
    return pa.concat_tables(tables)


def test_pyarrow_flight_client(server):
    client = flight.FlightClient(server.uri)
    table = pyarrow_query(client, STAR_QUERY)
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(STAR_QUERY)
        assert table.equals(cur.fetch_arrow_table())
    # A larger result arrives in several batches.
    reader = client.do_get(
        client.get_flight_info(
            flight.FlightDescriptor.for_command(
                statement_query("SELECT value FROM generate_series(1, 300000)")
            )
        ).endpoints[0].ticket
    )
    batches = [chunk.data for chunk in reader]
    assert len(batches) > 1
    assert sum(b.num_rows for b in batches) == 300000


def test_use_is_per_connection(server):
    """Each ADBC connection, and each pyarrow Flight client, has its own session: USE in one
    does not change the zone of another."""
    with server.connect() as a, server.connect() as b, a.cursor() as ca, b.cursor() as cb:
        ca.execute("USE raw")
        ca.fetchall()
        cb.execute("USE processed")
        cb.fetchall()
        cb.execute("CREATE TABLE stores AS SELECT 'only b' AS note")
        cb.fetchall()
        ca.execute("SELECT count(*) FROM stores")
        assert ca.fetchone()[0] > 1
        cb.execute("SELECT * FROM stores")
        assert cb.fetchall() == [("only b",)]
    first = flight.FlightClient(server.uri)
    second = flight.FlightClient(server.uri)
    pyarrow_query(first, "USE raw")
    assert pyarrow_query(first, "SELECT count(*) AS n FROM stores").column("n")[0].as_py() > 1
    with pytest.raises((flight.FlightError, pa.ArrowException)) as err:
        pyarrow_query(second, "SELECT count(*) AS n FROM stores")
    assert "stores" in str(err.value)


def test_notebook_example(server):
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "notebook.py"), server.uri],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "revenue" in out.stdout and "coffee" in out.stdout


MIXED_QUERY = """
SELECT value,
       arrow_cast(CASE WHEN value % 7 = 0 THEN NULL
                  ELSE concat('row number ', value, repeat('-', value % 30)) END, 'Utf8View') AS long_or_null,
       arrow_cast(concat('r', value % 10), 'Utf8View') AS short,
       arrow_cast(concat('category ', value % 5), 'Dictionary(Int32, Utf8)') AS category,
       concat('plain ', value) AS plain
FROM generate_series(1, 100000)
ORDER BY long_or_null DESC NULLS LAST, value
"""


def expected_mixed_rows():
    rows = [
        (
            v,
            None if v % 7 == 0 else f"row number {v}" + "-" * (v % 30),
            f"r{v % 10}",
            f"category {v % 5}",
            f"plain {v}",
        )
        for v in range(1, 100001)
    ]
    with_long = sorted((r for r in rows if r[1] is not None), key=lambda r: (r[1], -r[0]), reverse=True)
    return with_long + [r for r in rows if r[1] is None]


def test_strings_views_dictionaries_nulls_and_empty_results(server):
    """Both clients read every kind of string column, nulls and dictionaries (sent anew
    with each batch) as the engine computed them; views arrive as plain strings."""
    client = flight.FlightClient(server.uri)
    expected = expected_mixed_rows()
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(MIXED_QUERY)
        via_adbc = cur.fetch_arrow_table()
        cur.execute(f"SELECT * FROM ({MIXED_QUERY}) WHERE value < 0")
        empty_adbc = cur.fetch_arrow_table()
    via_pyarrow = pyarrow_query(client, MIXED_QUERY)
    empty_pyarrow = pyarrow_query(client, f"SELECT * FROM ({MIXED_QUERY}) WHERE value < 0")
    for table in (via_adbc, via_pyarrow):
        assert table.schema.field("long_or_null").type == pa.string()
        assert table.schema.field("category").type == pa.dictionary(pa.int32(), pa.string())
        assert table.column("category").num_chunks > 1
        assert table.column("long_or_null").null_count == 100000 // 7
        got = list(zip(*(table.column(c).to_pylist() for c in table.column_names)))
        assert got == expected
    for table in (empty_adbc, empty_pyarrow):
        assert table.num_rows == 0
        assert table.schema == via_pyarrow.schema
