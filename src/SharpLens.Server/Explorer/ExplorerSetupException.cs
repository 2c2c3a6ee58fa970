namespace SharpLens.Server.Explorer;

/// <summary>The Explorer cannot start as asked (a corpus it cannot read, a missing tokenizer); the message says what to give instead.</summary>
public sealed class ExplorerSetupException(string message) : SharpLensException(message);
