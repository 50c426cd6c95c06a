using System.Diagnostics.CodeAnalysis;
using Burnrate.Telemetry;

namespace Burnrate.Protocols.RemoteWrite.Internal;

/// <summary>Protobuf wire types (protobuf encoding spec, "Message Structure").</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    Len = 2,
    Fixed32 = 5,
}

/// <summary>
/// A forward-only protobuf wire reader over a span, for the remote write messages: no allocation, and errors name the
/// message being decoded and the absolute byte offset. Unknown fields are skipped, as generated parsers do.
/// </summary>
internal ref struct ProtoReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly int _origin;      // offset of _data[0] in the whole message, for error offsets
    private readonly string _message;  // the top-level message name, for errors
    private int _position;

    public ProtoReader(ReadOnlySpan<byte> data, int origin, string message)
    {
        _data = data;
        _origin = origin;
        _message = message;
        _position = 0;
    }

    /// <summary>Absolute offset of the next byte.</summary>
    public readonly int Offset => _origin + _position;

    public bool TryReadTag(out int field, out WireType wireType)
    {
        if (_position >= _data.Length)
        {
            field = 0;
            wireType = 0;
            return false;
        }
        var start = Offset;
        var tag = ReadVarint();
        field = (int)(tag >> 3);
        wireType = (WireType)(int)(tag & 7);
        if (field == 0 || tag >> 3 > int.MaxValue)
            Fail($"invalid field number {tag >> 3}", start);
        return true;
    }

    public ulong ReadVarint()
    {
        ulong result = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            if (_position >= _data.Length)
                Fail("truncated varint", Offset);
            var b = _data[_position++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
                return result;
        }
        Fail("varint longer than 10 bytes", Offset);
        return 0;
    }

    public double ReadDouble()
    {
        if (_data.Length - _position < 8)
            Fail("truncated fixed64", Offset);
        var value = BitConverter.Int64BitsToDouble(System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(_data.Slice(_position, 8)));
        _position += 8;
        return value;
    }

    /// <summary>Reads a length-delimited field; <paramref name="origin"/> is its absolute offset.</summary>
    public ReadOnlySpan<byte> ReadBytes(out int origin)
    {
        var start = Offset;
        var length = ReadVarint();
        if (length > (ulong)(_data.Length - _position))
            Fail($"length-delimited field of {length} bytes runs past the end", start);
        origin = Offset;
        var bytes = _data.Slice(_position, (int)length);
        _position += (int)length;
        return bytes;
    }

    public readonly ProtoReader Nested(ReadOnlySpan<byte> bytes, int origin) => new(bytes, origin, _message);

    public void Skip(WireType wireType)
    {
        switch (wireType)
        {
            case WireType.Varint:
                ReadVarint();
                break;
            case WireType.Fixed64:
                if (_data.Length - _position < 8)
                    Fail("truncated fixed64", Offset);
                _position += 8;
                break;
            case WireType.Len:
                ReadBytes(out _);
                break;
            case WireType.Fixed32:
                if (_data.Length - _position < 4)
                    Fail("truncated fixed32", Offset);
                _position += 4;
                break;
            default:
                Fail($"unsupported wire type {(int)wireType}", Offset);
                break;
        }
    }

    [DoesNotReturn]
    public readonly void Fail(string what, int offset) =>
        throw new InvalidTelemetryException($"protobuf: cannot decode {_message}: {what} at byte {offset}");
}
