namespace Burnrate.Protocols.RemoteWrite;

/// <summary>
/// The request's Content-Type names no remote write message this receiver decodes; the HTTP layer answers
/// 415 Unsupported Media Type with <see cref="Exception.Message"/> as the body (a 2.0 sender may then retry as 1.0).
/// </summary>
public sealed class UnsupportedRemoteWriteTypeException : Exception
{
    public UnsupportedRemoteWriteTypeException(string message) : base(message) { }
    public UnsupportedRemoteWriteTypeException(string message, Exception inner) : base(message, inner) { }
    public UnsupportedRemoteWriteTypeException() { }

    /// <summary>The Content-Type as the client sent it (null when absent).</summary>
    public string? ContentType { get; init; }
}
