namespace SharpLens;

/// <summary>
/// The base of every error SharpLens raises on purpose: bad input the user can fix (a malformed file, an unknown name,
/// an argument out of range). Its message names the file, tensor, field, argument or hook, and what to do; the CLI
/// prints it as one paragraph and exits 2. Anything else that escapes is an internal error.
/// </summary>
public class SharpLensException(string message, Exception? inner = null) : Exception(message, inner);
