-- The retail pipeline: raw NDJSON sales -> processed (typed, partitioned by year and month)
-- -> curated star schema (fact_sales, dim_product, dim_store, dim_date) and a daily
-- aggregate materialized view.
--
--   strata --demo run examples/retail/pipeline.sql --var month=3
--
-- One month per run. Loading a month again replaces it (INSERT OVERWRITE … PARTITION), so
-- runs are idempotent. The CHECKs right after a write are checked on the new data before
-- readers see it: if one fails, the table stays as it was and the run stops here.

-- processed: completed sales (quantity > 0), typed, with the date and revenue derived.
CREATE TABLE IF NOT EXISTS processed.sales (
  sale_id BIGINT, sold_at TIMESTAMP, sale_date DATE, product_id BIGINT, store_id BIGINT,
  customer_id BIGINT, segment VARCHAR, quantity BIGINT, revenue DOUBLE, year INT, month INT
) STORED AS DELTA PARTITIONED BY (year, month);

INSERT OVERWRITE processed.sales PARTITION (year, month)
SELECT sale_id,
       CAST(sold_at AS TIMESTAMP) AS sold_at,
       CAST(CAST(sold_at AS TIMESTAMP) AS DATE) AS sale_date,
       product_id,
       store_id,
       customer['id'] AS customer_id,
       customer['segment'] AS segment,
       quantity,
       amount AS revenue,
       CAST(year AS INT) AS year,
       CAST(month AS INT) AS month
FROM raw.sales
WHERE year = 2024 AND month = ${month} AND quantity > 0;
CHECK 'the month has sales' EXPECT (SELECT count(*) FROM processed.sales WHERE year = 2024 AND month = ${month}) > 0;
CHECK 'no null keys' EXPECT (SELECT count(*) FROM processed.sales WHERE product_id IS NULL OR store_id IS NULL) = 0;

-- curated dimensions.
CREATE OR REPLACE TABLE curated.dim_product AS
SELECT product_id, name, category, unit_price FROM raw.products;
CHECK 'products are unique' EXPECT (SELECT count(*) - count(DISTINCT product_id) FROM curated.dim_product) = 0;

CREATE OR REPLACE TABLE curated.dim_store AS
SELECT store_id, city, region, CAST(opened AS DATE) AS opened FROM raw.stores;

CREATE OR REPLACE TABLE curated.dim_date AS
SELECT DISTINCT sale_date AS date_key,
       CAST(date_part('year', sale_date) AS INT) AS year,
       CAST(date_part('month', sale_date) AS INT) AS month,
       CAST(date_part('day', sale_date) AS INT) AS day,
       CAST(date_part('dow', sale_date) AS INT) AS day_of_week
FROM processed.sales;

-- curated fact, loaded a month at a time.
CREATE TABLE IF NOT EXISTS curated.fact_sales (
  sale_id BIGINT, date_key DATE, product_id BIGINT, store_id BIGINT, quantity BIGINT,
  revenue DOUBLE, year INT, month INT
) STORED AS DELTA PARTITIONED BY (year, month);

INSERT OVERWRITE curated.fact_sales PARTITION (year, month)
SELECT sale_id, sale_date, product_id, store_id, quantity, revenue, year, month
FROM processed.sales
WHERE year = 2024 AND month = ${month};
CHECK 'every sale has a product' EXPECT (SELECT count(*) FROM curated.fact_sales f LEFT JOIN curated.dim_product p ON f.product_id = p.product_id WHERE p.product_id IS NULL) = 0;
CHECK 'facts match processed' EXPECT (SELECT count(*) FROM curated.fact_sales WHERE month = ${month}) = (SELECT count(*) FROM processed.sales WHERE month = ${month});

-- the daily aggregate, as a materialized view.
CREATE MATERIALIZED VIEW IF NOT EXISTS curated.daily_sales AS
SELECT f.date_key, p.category, st.region,
       count(*) AS sales, sum(f.quantity) AS units, round(sum(f.revenue), 2) AS revenue
FROM curated.fact_sales f
JOIN curated.dim_product p ON f.product_id = p.product_id
JOIN curated.dim_store st ON f.store_id = st.store_id
GROUP BY f.date_key, p.category, st.region;

REFRESH MATERIALIZED VIEW curated.daily_sales;
CHECK 'the aggregate adds up' EXPECT (SELECT sum(sales) FROM curated.daily_sales) = (SELECT count(*) FROM curated.fact_sales);
