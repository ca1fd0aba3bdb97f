"""Writes strata's sample data: a small retail star schema, and the edge cases the tests use.

Deterministic: run `python3 testdata/generate.py` from the repository root to rebuild it.
"""
import gzip
import json
import os
import random

ROOT = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(42)


def write(path, text, gz=False):
    full = os.path.join(ROOT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if gz:
        with gzip.GzipFile(full, "wb", mtime=0) as f:
            f.write(text.encode())
    else:
        with open(full, "w") as f:
            f.write(text)


PRODUCTS = [
    (1, "Espresso beans 1kg", "coffee", 18.50),
    (2, "Filter coffee 500g", "coffee", 9.90),
    (3, "Green tea 100 bags", "tea", 6.40),
    (4, "Earl grey 50 bags", "tea", 4.80),
    (5, "Ceramic mug", "homeware", 7.00),
    (6, "Milk frother", "homeware", 29.00),
    (7, "Oat milk 1l", "dairy-free", 2.30),
    (8, "Dark chocolate bar", "snacks", 2.90),
]
STORES = [
    (10, "Lisbon", "south", "2019-03-01"),
    (11, "Porto", "north", "2020-06-15"),
    (12, "Braga", "north", "2021-09-01"),
    (13, "Faro", "south", "2022-04-20"),
]
CUSTOMERS = [
    (100, "Ana", "consumer"),
    (101, "Bruno", "consumer"),
    (102, "Carla", "corporate"),
    (103, "Duarte", "small-business"),
    (104, "Eva", "corporate"),
    (105, "Filipe", "consumer"),
]

write("retail/products/products.csv",
      "product_id,name,category,unit_price\n"
      + "".join(f"{p},{n},{c},{u:.2f}\n" for p, n, c, u in PRODUCTS))
write("retail/stores/stores.csv",
      "store_id,city,region,opened\n"
      + "".join(f"{s},{c},{r},{o}\n" for s, c, r, o in STORES))

sale_id = 1
for month in range(1, 7):
    lines = []
    for _ in range(20):
        product = rng.choice(PRODUCTS)
        store = rng.choice(STORES)
        cust = rng.choice(CUSTOMERS)
        qty = rng.randint(1, 5)
        day = rng.randint(1, 28)
        rec = {
            "sale_id": sale_id,
            "sold_at": f"2024-{month:02d}-{day:02d}T{rng.randint(8, 19):02d}:{rng.randint(0, 59):02d}:00",
            "product_id": product[0],
            "store_id": store[0],
            "quantity": qty,
            "amount": round(qty * product[3], 2),
            "customer": {"id": cust[0], "name": cust[1], "segment": cust[2]},
            "tags": rng.sample(["web", "loyalty", "gift", "promo"], rng.randint(0, 2)),
        }
        # The loyalty programme started in April: older files have no such field.
        if month >= 4:
            rec["loyalty_points"] = qty * 10
        lines.append(json.dumps(rec))
        sale_id += 1
    write(f"retail/sales/year=2024/month={month:02d}/part-0.ndjson", "\n".join(lines) + "\n")

# Edge cases used by the SQL tests.
write("edge/malformed/part-0.ndjson",
      '{"id": 1, "v": "a"}\n{"id": 2, "v": "b"}\n{"id": 3, "v": \n{"id": 4, "v": "d"}\n')
write("edge/conflict/a.ndjson", '{"id": 1, "x": {"k": 1}}\n')
write("edge/conflict/b.ndjson", '{"id": 2, "x": 5}\n')
write("edge/widen/a.ndjson", '{"id": 1, "code": 7, "score": 1}\n')
write("edge/widen/b.ndjson", '{"id": 2, "code": "B-7", "score": 2.5}\n')
write("edge/extensions/a.json", '{"id": 1}\n')
write("edge/extensions/b.jsonl", '{"id": 2}\n')
write("edge/extensions/c.ndjson", '{"id": 3}\n')
write("edge/extensions/d.ndjson.gz", '{"id": 4}\n{"id": 5}\n', gz=True)
write("edge/extensions/_SUCCESS", "")
# Month 02 holds a malformed line: a query that reads it fails, so a query for month 1
# that succeeds proves month 02 was never opened.
write("edge/pruning/year=2024/month=01/part-0.ndjson", '{"id": 1}\n{"id": 2}\n')
write("edge/pruning/year=2024/month=02/part-0.ndjson", '{"id": 3}\nthis is not json\n')
write("edge/pruning/year=2025/month=01/part-0.ndjson", '{"id": 4}\n')
write("edge/empty/.keep", "")
