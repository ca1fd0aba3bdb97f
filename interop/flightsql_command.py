"""Flight SQL commands for pyarrow's Flight client, which has no Flight SQL of its own: a
CommandStatementQuery in a protobuf Any, written out by hand (protobuf's wire format is
small enough for that, and it spares a protobuf dependency)."""


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, data):
    """A length-delimited protobuf field."""
    return bytes([(number << 3) | 2]) + _varint(len(data)) + data


def statement_query(sql):
    """The body of a FlightDescriptor.for_command that runs `sql`."""
    type_url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return _field(1, type_url) + _field(2, _field(1, sql.encode()))
