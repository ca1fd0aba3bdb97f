//! The Star Schema Benchmark (O'Neil, O'Neil and Chen): `lineorder`, `customer`,
//! `supplier`, `part` and `date`, derived from the TPC-H generator as the SSB specification
//! (and its `ssb-dbgen`) derives them from TPC-H's:
//!
//! - `lineorder` merges TPC-H's orders and lineitem generators in lockstep (both run in
//!   order-key order): one row per line item with its order's date, priority and customer.
//!   Dates are `yyyymmdd` integers and money is in cents, as ssb-dbgen prints them;
//!   `lo_extendedprice = retailprice * quantity`, `lo_revenue = extendedprice * (100 -
//!   discount) / 100`, `lo_supplycost = 6 * retailprice / 10` and `lo_ordtotalprice` sums
//!   `revenue * (100 + tax) / 100` over the order, with TPC-H's retail price of the part key.
//! - The dimensions have SSB's sizes (customer SF×30,000, supplier SF×2,000, part
//!   200,000×⌊1 + log₂ SF⌋, or SF×200,000 below SF 1): the first rows of TPC-H's customer,
//!   supplier and part generators, with the fact's keys folded into those ranges.
//!   `c_city`/`s_city` are the nation name cut or padded to 9 characters plus a digit,
//!   `p_mfgr` `MFGR#m`, `p_category` `MFGR#mn` (from TPC-H's manufacturer and brand),
//!   `p_brand1` `MFGR#mn` followed by 1 to 40.
//! - `date` holds every day from 1992-01-01 to 1998-12-31.
//!
//! Where ssb-dbgen draws a random number (the city digit, the brand within a category)
//! this takes it from a hash of the key, so every run makes the same rows.

use std::collections::VecDeque;
use std::iter::Peekable;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use chrono::{Datelike, NaiveDate};
use tpchgen::dates::TPCHDate;
use tpchgen::generators::{
    CustomerGenerator, LineItem, LineItemGenerator, LineItemGeneratorIterator, NationGenerator,
    OrderGenerator, OrderGeneratorIterator, PartGenerator, RegionGenerator, SupplierGenerator,
};

use crate::datagen::{Batches, Source};

/// The SSB tables, smallest first.
pub const TABLES: [&str; 5] = ["date", "supplier", "customer", "part", "lineorder"];

/// Rows per generated batch.
const BATCH_ROWS: usize = 8192;

/// Rows of the dimension tables at a scale factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub customers: i64,
    pub suppliers: i64,
    pub parts: i64,
}

impl Sizes {
    /// SSB's sizes at scale factor `sf`.
    pub fn new(sf: f64) -> Self {
        let parts = if sf < 1.0 {
            (200_000.0 * sf) as i64
        } else {
            200_000 * (1 + sf.log2().floor() as i64)
        };
        Self {
            customers: ((30_000.0 * sf) as i64).max(1),
            suppliers: ((2_000.0 * sf) as i64).max(1),
            // Never more than TPC-H's part table holds: the dimension is its first rows.
            parts: parts.clamp(1, PartGenerator::calculate_row_count(sf, 1, 1).max(1)),
        }
    }
}

/// The SSB tables at scale factor `sf`, `lineorder` partitionable by the year of
/// `lo_orderdate`.
pub fn sources(sf: f64) -> Vec<Source> {
    let sizes = Sizes::new(sf);
    TABLES
        .iter()
        .map(|table| {
            let name: &'static str = table;
            let (schema, year_of) = match name {
                "lineorder" => (lineorder_schema(), Some("lo_orderdate")),
                "customer" => (customer_schema(), None),
                "supplier" => (supplier_schema(), None),
                "part" => (part_schema(), None),
                _ => (date_schema(), None),
            };
            let make_schema = Arc::clone(&schema);
            Source {
                name,
                schema,
                batches: Arc::new(move || batches(name, sf, sizes, Arc::clone(&make_schema))),
                year_of,
            }
        })
        .collect()
}

fn batches(table: &str, sf: f64, sizes: Sizes, schema: SchemaRef) -> Batches {
    match table {
        "lineorder" => batched(LineorderRows::new(sf, sizes), move |rows| {
            lineorder_batch(&schema, rows)
        }),
        "customer" => {
            let geography = geography();
            let rows = CustomerGenerator::new(sf, 1, 1)
                .iter()
                .take(sizes.customers as usize);
            batched(rows, move |rows| {
                let place = |key: i64, nation: i64| place(&geography, key, nation, 1);
                let places: Vec<_> = rows
                    .iter()
                    .map(|c| place(c.c_custkey, c.c_nationkey))
                    .collect();
                columns(
                    &schema,
                    vec![
                        int32(rows.iter().map(|c| c.c_custkey as i32)),
                        strings(rows.iter().map(|c| c.c_name.to_string())),
                        strings(rows.iter().map(|c| c.c_address.to_string())),
                        strings(places.iter().map(|p| p.0.clone())),
                        strings(places.iter().map(|p| p.1.clone())),
                        strings(places.iter().map(|p| p.2.clone())),
                        strings(rows.iter().map(|c| c.c_phone.to_string())),
                        strings(rows.iter().map(|c| c.c_mktsegment.to_string())),
                    ],
                )
            })
        }
        "supplier" => {
            let geography = geography();
            let rows = SupplierGenerator::new(sf, 1, 1)
                .iter()
                .take(sizes.suppliers as usize);
            batched(rows, move |rows| {
                let places: Vec<_> = rows
                    .iter()
                    .map(|s| place(&geography, s.s_suppkey, s.s_nationkey, 2))
                    .collect();
                columns(
                    &schema,
                    vec![
                        int32(rows.iter().map(|s| s.s_suppkey as i32)),
                        strings(rows.iter().map(|s| s.s_name.to_string())),
                        strings(rows.iter().map(|s| s.s_address.to_string())),
                        strings(places.iter().map(|p| p.0.clone())),
                        strings(places.iter().map(|p| p.1.clone())),
                        strings(places.iter().map(|p| p.2.clone())),
                        strings(rows.iter().map(|s| s.s_phone.to_string())),
                    ],
                )
            })
        }
        "part" => {
            let rows = PartGenerator::new(sf, 1, 1)
                .iter()
                .take(sizes.parts as usize);
            batched(rows, move |rows| {
                let names: Vec<String> = rows.iter().map(|p| p.p_name.to_string()).collect();
                let categories: Vec<String> = rows
                    .iter()
                    .map(|p| category(&p.p_brand.to_string()))
                    .collect();
                columns(
                    &schema,
                    vec![
                        int32(rows.iter().map(|p| p.p_partkey as i32)),
                        strings(
                            names
                                .iter()
                                .map(|n| n.split(' ').take(2).collect::<Vec<_>>().join(" ")),
                        ),
                        strings(categories.iter().map(|c| c[..6].to_string())),
                        strings(categories.iter().cloned()),
                        strings(
                            rows.iter()
                                .zip(&categories)
                                .map(|(p, c)| format!("{c}{}", brand(p.p_partkey))),
                        ),
                        strings(
                            names
                                .iter()
                                .map(|n| n.split(' ').next().unwrap_or_default().to_string()),
                        ),
                        strings(rows.iter().map(|p| p.p_type.to_string())),
                        int32(rows.iter().map(|p| p.p_size)),
                        strings(rows.iter().map(|p| p.p_container.to_string())),
                    ],
                )
            })
        }
        _ => {
            let first = NaiveDate::from_ymd_opt(1992, 1, 1).unwrap_or_default();
            let last = NaiveDate::from_ymd_opt(1998, 12, 31).unwrap_or_default();
            batched(
                first.iter_days().take_while(move |d| *d <= last),
                move |days| date_batch(&schema, days),
            )
        }
    }
}

/// Groups rows into batches of [`BATCH_ROWS`] built by `build`.
fn batched<I, F>(mut rows: I, build: F) -> Batches
where
    I: Iterator + Send + 'static,
    F: Fn(&[I::Item]) -> std::result::Result<RecordBatch, ArrowError> + Send + 'static,
{
    Box::new(std::iter::from_fn(move || {
        let chunk: Vec<I::Item> = rows.by_ref().take(BATCH_ROWS).collect();
        (!chunk.is_empty()).then(|| build(&chunk))
    }))
}

fn columns(
    schema: &SchemaRef,
    columns: Vec<ArrayRef>,
) -> std::result::Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(Arc::clone(schema), columns)
}

fn int32(values: impl Iterator<Item = i32>) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(values))
}

fn int64(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

fn strings<S: AsRef<str>>(values: impl Iterator<Item = S>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn booleans(values: impl Iterator<Item = bool>) -> ArrayRef {
    Arc::new(BooleanArray::from_iter(values.map(Some)))
}

fn schema(fields: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|(name, t)| Field::new(*name, t.clone(), false))
            .collect::<Vec<_>>(),
    ))
}

fn lineorder_schema() -> SchemaRef {
    use DataType::{Int32, Int64, Utf8};
    schema(&[
        ("lo_orderkey", Int64),
        ("lo_linenumber", Int32),
        ("lo_custkey", Int32),
        ("lo_partkey", Int32),
        ("lo_suppkey", Int32),
        ("lo_orderdate", Int32),
        ("lo_orderpriority", Utf8),
        ("lo_shippriority", Int32),
        ("lo_quantity", Int32),
        ("lo_extendedprice", Int64),
        ("lo_ordtotalprice", Int64),
        ("lo_discount", Int32),
        ("lo_revenue", Int64),
        ("lo_supplycost", Int64),
        ("lo_tax", Int32),
        ("lo_commitdate", Int32),
        ("lo_shipmode", Utf8),
    ])
}

fn customer_schema() -> SchemaRef {
    use DataType::{Int32, Utf8};
    schema(&[
        ("c_custkey", Int32),
        ("c_name", Utf8),
        ("c_address", Utf8),
        ("c_city", Utf8),
        ("c_nation", Utf8),
        ("c_region", Utf8),
        ("c_phone", Utf8),
        ("c_mktsegment", Utf8),
    ])
}

fn supplier_schema() -> SchemaRef {
    use DataType::{Int32, Utf8};
    schema(&[
        ("s_suppkey", Int32),
        ("s_name", Utf8),
        ("s_address", Utf8),
        ("s_city", Utf8),
        ("s_nation", Utf8),
        ("s_region", Utf8),
        ("s_phone", Utf8),
    ])
}

fn part_schema() -> SchemaRef {
    use DataType::{Int32, Utf8};
    schema(&[
        ("p_partkey", Int32),
        ("p_name", Utf8),
        ("p_mfgr", Utf8),
        ("p_category", Utf8),
        ("p_brand1", Utf8),
        ("p_color", Utf8),
        ("p_type", Utf8),
        ("p_size", Int32),
        ("p_container", Utf8),
    ])
}

fn date_schema() -> SchemaRef {
    use DataType::{Boolean, Int32, Utf8};
    schema(&[
        ("d_datekey", Int32),
        ("d_date", Utf8),
        ("d_dayofweek", Utf8),
        ("d_month", Utf8),
        ("d_year", Int32),
        ("d_yearmonthnum", Int32),
        ("d_yearmonth", Utf8),
        ("d_daynuminweek", Int32),
        ("d_daynuminmonth", Int32),
        ("d_daynuminyear", Int32),
        ("d_monthnuminyear", Int32),
        ("d_weeknuminyear", Int32),
        ("d_sellingseason", Utf8),
        ("d_lastdayinweekfl", Boolean),
        ("d_lastdayinmonthfl", Boolean),
        ("d_holidayfl", Boolean),
        ("d_weekdayfl", Boolean),
    ])
}

/// A 64-bit mix of a key (splitmix64), for the choices ssb-dbgen makes at random.
fn mix(key: i64, salt: u64) -> u64 {
    let mut z = (key as u64)
        .wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 25 nations by key, each with its region's name.
fn geography() -> Vec<(String, String)> {
    let regions: Vec<String> = RegionGenerator::new(1.0, 1, 1)
        .iter()
        .map(|r| r.r_name.to_string())
        .collect();
    NationGenerator::new(1.0, 1, 1)
        .iter()
        .map(|n| {
            let region = regions
                .get(n.n_regionkey as usize)
                .cloned()
                .unwrap_or_default();
            (n.n_name.to_string(), region)
        })
        .collect()
}

/// City, nation and region of a customer or supplier: the city is the nation's name cut or
/// padded to 9 characters, then a digit.
fn place(
    geography: &[(String, String)],
    key: i64,
    nation: i64,
    salt: u64,
) -> (String, String, String) {
    let (name, region) = geography.get(nation as usize).cloned().unwrap_or_default();
    let city = format!("{name:<9.9}{}", mix(key, salt) % 10);
    (city, name, region)
}

/// `MFGR#mn` from TPC-H's `Brand#mn` (whose first digit is the manufacturer's).
fn category(tpch_brand: &str) -> String {
    format!("MFGR#{}", tpch_brand.strip_prefix("Brand#").unwrap_or("11"))
}

/// The brand of a part within its category, 1 to 40.
fn brand(partkey: i64) -> u64 {
    mix(partkey, 3) % 40 + 1
}

/// TPC-H's retail price of a part, in cents: a formula of its key.
fn retail_price(partkey: i64) -> i64 {
    90_000 + (partkey / 10) % 20_001 + (partkey % 1_000) * 100
}

/// A key folded into `1..=count`.
fn fold(key: i64, count: i64) -> i32 {
    ((key - 1).rem_euclid(count) + 1) as i32
}

/// A TPC-H date as a `yyyymmdd` integer.
fn date_key(date: TPCHDate) -> i32 {
    NaiveDate::from_num_days_from_ce_opt(date.to_unix_epoch() + 719_163).map_or(0, |d| {
        d.year() * 10_000 + d.month() as i32 * 100 + d.day() as i32
    })
}

/// One row of `lineorder`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lineorder {
    orderkey: i64,
    linenumber: i32,
    custkey: i32,
    partkey: i32,
    suppkey: i32,
    orderdate: i32,
    orderpriority: &'static str,
    shippriority: i32,
    quantity: i32,
    extendedprice: i64,
    ordtotalprice: i64,
    discount: i32,
    revenue: i64,
    supplycost: i64,
    tax: i32,
    commitdate: i32,
    shipmode: &'static str,
}

/// `lineorder` rows: TPC-H's orders and their line items, read together.
struct LineorderRows {
    orders: OrderGeneratorIterator<'static>,
    lines: Peekable<LineItemGeneratorIterator<'static>>,
    pending: VecDeque<Lineorder>,
    sizes: Sizes,
}

impl LineorderRows {
    fn new(sf: f64, sizes: Sizes) -> Self {
        Self {
            orders: OrderGenerator::new(sf, 1, 1).iter(),
            lines: LineItemGenerator::new(sf, 1, 1).iter().peekable(),
            pending: VecDeque::new(),
            sizes,
        }
    }
}

impl Iterator for LineorderRows {
    type Item = Lineorder;

    fn next(&mut self) -> Option<Lineorder> {
        loop {
            if let Some(row) = self.pending.pop_front() {
                return Some(row);
            }
            let order = self.orders.next()?;
            let orderdate = date_key(order.o_orderdate);
            let custkey = fold(order.o_custkey, self.sizes.customers);
            let mut total = 0;
            while let Some(line) = self
                .lines
                .next_if(|l: &LineItem<'static>| l.l_orderkey == order.o_orderkey)
            {
                let partkey = fold(line.l_partkey, self.sizes.parts);
                let price = retail_price(i64::from(partkey));
                let discount = line.l_discount.into_inner();
                let tax = line.l_tax.into_inner();
                let extendedprice = price * line.l_quantity;
                let revenue = extendedprice * (100 - discount) / 100;
                total += revenue * (100 + tax) / 100;
                self.pending.push_back(Lineorder {
                    orderkey: order.o_orderkey,
                    linenumber: line.l_linenumber,
                    custkey,
                    partkey,
                    suppkey: fold(line.l_suppkey, self.sizes.suppliers),
                    orderdate,
                    orderpriority: order.o_orderpriority,
                    shippriority: order.o_shippriority,
                    quantity: line.l_quantity as i32,
                    extendedprice,
                    ordtotalprice: 0,
                    discount: discount as i32,
                    revenue,
                    supplycost: 6 * price / 10,
                    tax: tax as i32,
                    commitdate: date_key(line.l_commitdate),
                    shipmode: line.l_shipmode,
                });
            }
            for row in &mut self.pending {
                row.ordtotalprice = total;
            }
        }
    }
}

fn lineorder_batch(
    schema: &SchemaRef,
    rows: &[Lineorder],
) -> std::result::Result<RecordBatch, ArrowError> {
    columns(
        schema,
        vec![
            int64(rows.iter().map(|r| r.orderkey)),
            int32(rows.iter().map(|r| r.linenumber)),
            int32(rows.iter().map(|r| r.custkey)),
            int32(rows.iter().map(|r| r.partkey)),
            int32(rows.iter().map(|r| r.suppkey)),
            int32(rows.iter().map(|r| r.orderdate)),
            strings(rows.iter().map(|r| r.orderpriority)),
            int32(rows.iter().map(|r| r.shippriority)),
            int32(rows.iter().map(|r| r.quantity)),
            int64(rows.iter().map(|r| r.extendedprice)),
            int64(rows.iter().map(|r| r.ordtotalprice)),
            int32(rows.iter().map(|r| r.discount)),
            int64(rows.iter().map(|r| r.revenue)),
            int64(rows.iter().map(|r| r.supplycost)),
            int32(rows.iter().map(|r| r.tax)),
            int32(rows.iter().map(|r| r.commitdate)),
            strings(rows.iter().map(|r| r.shipmode)),
        ],
    )
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// ssb-dbgen's holidays, as (month, day).
const HOLIDAYS: [(u32, u32); 10] = [
    (12, 24),
    (1, 1),
    (2, 20),
    (4, 20),
    (5, 20),
    (7, 20),
    (8, 20),
    (9, 20),
    (10, 20),
    (11, 20),
];

/// ssb-dbgen's selling seasons, by month.
fn selling_season(month: u32) -> &'static str {
    match month {
        11 | 12 => "Christmas",
        5..=8 => "Summer",
        1..=3 => "Winter",
        4 => "Spring",
        _ => "Fall",
    }
}

fn date_batch(
    schema: &SchemaRef,
    days: &[NaiveDate],
) -> std::result::Result<RecordBatch, ArrowError> {
    // Sunday is day 1 of the week.
    let weekday = |d: &NaiveDate| d.weekday().num_days_from_sunday() as i32 + 1;
    let month_name = |d: &NaiveDate| MONTHS[d.month0() as usize];
    let last_in_month = |d: &NaiveDate| d.succ_opt().is_none_or(|next| next.month() != d.month());
    columns(
        schema,
        vec![
            int32(
                days.iter()
                    .map(|d| d.year() * 10_000 + d.month() as i32 * 100 + d.day() as i32),
            ),
            strings(
                days.iter()
                    .map(|d| format!("{} {}, {}", month_name(d), d.day(), d.year())),
            ),
            strings(
                days.iter()
                    .map(|d| WEEKDAYS[d.weekday().num_days_from_sunday() as usize]),
            ),
            strings(days.iter().map(month_name)),
            int32(days.iter().map(|d| d.year())),
            int32(days.iter().map(|d| d.year() * 100 + d.month() as i32)),
            strings(
                days.iter()
                    .map(|d| format!("{}{}", &month_name(d)[..3], d.year())),
            ),
            int32(days.iter().map(weekday)),
            int32(days.iter().map(|d| d.day() as i32)),
            int32(days.iter().map(|d| d.ordinal() as i32)),
            int32(days.iter().map(|d| d.month() as i32)),
            int32(days.iter().map(|d| d.ordinal() as i32 / 7 + 1)),
            strings(days.iter().map(|d| selling_season(d.month()))),
            booleans(days.iter().map(|d| weekday(d) == 7)),
            booleans(days.iter().map(last_in_month)),
            booleans(
                days.iter()
                    .map(|d| HOLIDAYS.contains(&(d.month(), d.day()))),
            ),
            booleans(days.iter().map(|d| (2..=6).contains(&weekday(d)))),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::{Int32Type, Int64Type};

    fn all(table: &str, sf: f64) -> Vec<RecordBatch> {
        let source = sources(sf)
            .into_iter()
            .find(|s| s.name == table)
            .expect("table");
        (source.batches)()
            .collect::<std::result::Result<Vec<_>, _>>()
            .expect("batches")
    }

    #[test]
    fn sizes_follow_the_specification() {
        assert_eq!(
            Sizes::new(1.0),
            Sizes {
                customers: 30_000,
                suppliers: 2_000,
                parts: 200_000
            }
        );
        assert_eq!(Sizes::new(10.0).parts, 800_000);
        assert_eq!(Sizes::new(0.01).parts, 2_000);
    }

    #[test]
    fn date_dimension_has_every_day_of_seven_years() {
        let batches = all("date", 0.01);
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 2557);
        let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat");
        // 1997-12-31 was a Wednesday.
        let i = batch
            .column(0)
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .position(|k| *k == 19971231)
            .expect("1997-12-31");
        let text = |c: usize| batch.column(c).as_string::<i32>().value(i).to_string();
        assert_eq!(text(1), "December 31, 1997");
        assert_eq!(text(2), "Wednesday");
        assert_eq!(text(6), "Dec1997");
        assert_eq!(text(12), "Christmas");
        assert!(batch.column(14).as_boolean().value(i));
    }

    #[test]
    fn lineorder_follows_the_formulas_and_keys_fit_the_dimensions() {
        let sizes = Sizes::new(0.01);
        let rows: Vec<Lineorder> = LineorderRows::new(0.01, sizes).collect();
        assert_eq!(rows.len(), 60175);
        for r in &rows {
            let price = retail_price(i64::from(r.partkey));
            assert_eq!(r.extendedprice, price * i64::from(r.quantity));
            assert_eq!(
                r.revenue,
                r.extendedprice * (100 - i64::from(r.discount)) / 100
            );
            assert_eq!(r.supplycost, 6 * price / 10);
            assert!((1..=sizes.customers as i32).contains(&r.custkey));
            assert!((1..=sizes.suppliers as i32).contains(&r.suppkey));
            assert!((1..=sizes.parts as i32).contains(&r.partkey));
            assert!((19920101..=19981231).contains(&r.orderdate));
            assert!(r.commitdate > r.orderdate);
        }
        // The same rows every time.
        let again = all("lineorder", 0.01);
        assert_eq!(
            again[0].column(12).as_primitive::<Int64Type>().value(0),
            rows[0].revenue
        );
    }

    #[test]
    fn retail_price_is_tpch_s() {
        for part in PartGenerator::new(0.01, 1, 1).iter() {
            assert_eq!(
                retail_price(part.p_partkey),
                part.p_retailprice.into_inner()
            );
        }
    }

    #[test]
    fn dimension_attributes_have_the_ssb_shapes() {
        assert_eq!(category("Brand#23"), "MFGR#23");
        assert!((1..=40).contains(&brand(7)));
        let geography = geography();
        let (city, nation, region) = place(&geography, 1, 23, 1);
        assert_eq!(
            (nation.as_str(), region.as_str()),
            ("UNITED KINGDOM", "EUROPE")
        );
        assert!(city.starts_with("UNITED KI") && city.len() == 10);
        let (city, ..) = place(&geography, 1, 18, 1);
        assert!(city.starts_with("CHINA    "), "{city}");
        assert_eq!(
            date_key(TPCHDate::new(tpchgen::dates::MIN_GENERATE_DATE)),
            19920101
        );
    }
}
