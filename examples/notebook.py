"""strata from a notebook, over Arrow Flight SQL.

Start a server on the demo warehouse in a terminal:

    strata --demo serve

then run this file (or paste its cells into Jupyter):

    pip install adbc-driver-flightsql pandas pyarrow
    python examples/notebook.py [grpc://127.0.0.1:50051]
"""
# %%
import sys

import adbc_driver_flightsql.dbapi as flight_sql

uri = sys.argv[1] if len(sys.argv) > 1 else "grpc://127.0.0.1:50051"
conn = flight_sql.connect(uri, autocommit=True)

# %% Revenue by product category and store region: a star-schema query over the raw zone.
cur = conn.cursor()
cur.execute(
    """
    SELECT p.category, st.region,
           count(*) AS sales, sum(s.quantity) AS units, round(sum(s.amount), 2) AS revenue
    FROM raw.sales s
    JOIN raw.products p ON s.product_id = p.product_id
    JOIN raw.stores st ON s.store_id = st.store_id
    GROUP BY p.category, st.region
    ORDER BY revenue DESC
    """
)
df = cur.fetch_df()  # a pandas DataFrame; cur.fetch_arrow_table() gives Arrow
print(df.to_string(index=False))

# %% Parameters: one month's sales by customer segment.
cur.execute(
    "SELECT customer['segment'] AS segment, count(*) AS sales FROM raw.sales "
    "WHERE month = ? GROUP BY 1 ORDER BY 1",
    (3,),
)
print(cur.fetch_df().to_string(index=False))

# %% What is there: zones and their tables.
objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
for catalog in objects:
    for zone in catalog["catalog_db_schemas"]:
        names = [t["table_name"] for t in zone["db_schema_tables"] or []]
        print(f"{zone['db_schema_name']}: {', '.join(names) or '(no tables)'}")

cur.close()
conn.close()
