// Python's pickle format, protocols 0-5, as far as a state dict needs it: a stack machine whose opcodes push
// values (ints, floats, strings, bytes, None, bools), build containers (tuple, list, dict) from the values above a
// MARK, store and fetch them in a memo, and — the dangerous part — name Python globals (GLOBAL "module\nname\n",
// STACK_GLOBAL) and call them (REDUCE: callable, args tuple), set their state (BUILD), or hand an id to the loader
// (BINPERSID: PyTorch's reference to a tensor storage). Python's own unpickler imports and calls whatever a global
// names, which is how a .bin file runs code. This one never imports or calls Python: each global is looked up in
// a table of C# functions the caller allows (see TorchPickleFile), and any other name is refused.
//
// Opcodes that only a class instance needs (NEWOBJ, INST, OBJ, EXT*) are rejected; a state dict has none.

using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace SharpLens.Loading.Pickle;

/// <summary>A Python tuple read from a pickle.</summary>
public sealed record PickleTuple(IReadOnlyList<object?> Items);

/// <summary>A global the caller allows: a C# function standing in for the Python callable of that name.</summary>
public sealed record PickleGlobal(string Module, string Name, Func<PickleTuple, object?>? Call)
{
    public string FullName => $"{Module}.{Name}";
}

/// <summary>Runs a pickle stream's opcodes into plain values; globals come only from <c>resolveGlobal</c>.</summary>
/// <param name="resolveGlobal">The allowed global for (module, name); it must throw for anything else.</param>
/// <param name="persistentLoad">Turns a persistent id (BINPERSID) into a value.</param>
public sealed class PickleMachine(string filePath, Func<string, string, PickleGlobal> resolveGlobal, Func<object?, object?> persistentLoad)
{
    static readonly object Mark = new();
    const int MaxMemoEntries = 10_000_000;
    /// <summary>A state dict's pickle never holds more than a few values per tensor on the stack; a DUP or MARK bomb is stopped here.</summary>
    const int MaxStackEntries = 4_000_000, MaxMarks = 100_000, MaxContainerItems = 4_000_000;

    readonly List<object?> _stack = [];
    readonly List<int> _marks = [];
    readonly Dictionary<long, object?> _memo = [];

    public object? Load(ReadOnlySpan<byte> data)
    {
        int pos = 0;
        while (true)
        {
            if (pos >= data.Length) throw Bad(pos, "the stream ends without a STOP opcode; the pickle is truncated.");
            int at = pos;
            byte op = data[pos++];
            switch (op)
            {
                case 0x80: pos++; break;                                            // PROTO n
                case 0x95: pos += 8; break;                                         // FRAME length (frames only group bytes)
                case 0x2E:                                                          // STOP
                    if (_stack.Count != 1) throw Bad(at, $"STOP leaves {_stack.Count} values on the stack instead of 1.");
                    return Pop(at);
                case 0x28:                                                          // MARK
                    if (_marks.Count >= MaxMarks) throw Bad(at, $"more than {MaxMarks:N0} MARKs are open; a state dict nests a few.");
                    _marks.Add(_stack.Count);
                    break;
                case 0x30: Pop(at); break;                                          // POP
                case 0x31: PopMark(at); break;                                      // POP_MARK
                case 0x32: Push(Peek(at)); break;                                   // DUP
                case 0x4E: Push(null); break;                                       // NONE
                case 0x88: Push(true); break;                                       // NEWTRUE
                case 0x89: Push(false); break;                                      // NEWFALSE
                case 0x4B: Push((long)Take(data, ref pos, 1, at)[0]); break;        // BININT1
                case 0x4D: Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(data, ref pos, 2, at))); break; // BININT2
                case 0x4A: Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(data, ref pos, 4, at))); break;  // BININT
                case 0x8A: Push(Long(Take(data, ref pos, Take(data, ref pos, 1, at)[0], at), at)); break;           // LONG1
                case 0x8B: Push(Long(Take(data, ref pos, Length(BinaryPrimitives.ReadInt32LittleEndian(Take(data, ref pos, 4, at)), at), at), at)); break; // LONG4
                case 0x47: Push(BinaryPrimitives.ReadDoubleBigEndian(Take(data, ref pos, 8, at))); break;           // BINFLOAT
                case 0x49: Push(TextInt(Line(data, ref pos, at), at)); break;       // INT (protocol 0)
                case 0x4C: Push(TextInt(Line(data, ref pos, at).TrimEnd('L'), at)); break; // LONG (protocol 0)
                case 0x58: Push(Utf8(Take(data, ref pos, Length(BinaryPrimitives.ReadUInt32LittleEndian(Take(data, ref pos, 4, at)), at), at))); break; // BINUNICODE
                case 0x8C: Push(Utf8(Take(data, ref pos, Take(data, ref pos, 1, at)[0], at))); break;               // SHORT_BINUNICODE
                case 0x8D: Push(Utf8(Take(data, ref pos, Length(BinaryPrimitives.ReadInt64LittleEndian(Take(data, ref pos, 8, at)), at), at))); break; // BINUNICODE8
                case 0x55: Push(Latin1(Take(data, ref pos, Take(data, ref pos, 1, at)[0], at))); break;             // SHORT_BINSTRING
                case 0x54: Push(Latin1(Take(data, ref pos, Length(BinaryPrimitives.ReadInt32LittleEndian(Take(data, ref pos, 4, at)), at), at))); break; // BINSTRING
                case 0x43: Push(Take(data, ref pos, Take(data, ref pos, 1, at)[0], at).ToArray()); break;           // SHORT_BINBYTES
                case 0x42: Push(Take(data, ref pos, Length(BinaryPrimitives.ReadUInt32LittleEndian(Take(data, ref pos, 4, at)), at), at).ToArray()); break; // BINBYTES
                case 0x8E: Push(Take(data, ref pos, Length(BinaryPrimitives.ReadInt64LittleEndian(Take(data, ref pos, 8, at)), at), at).ToArray()); break; // BINBYTES8
                case 0x29: Push(new PickleTuple([])); break;                        // EMPTY_TUPLE
                case 0x85: Push(new PickleTuple([Pop(at)])); break;                 // TUPLE1
                case 0x86: { var b = Pop(at); var a = Pop(at); Push(new PickleTuple([a, b])); break; }             // TUPLE2
                case 0x87: { var c = Pop(at); var b = Pop(at); var a = Pop(at); Push(new PickleTuple([a, b, c])); break; } // TUPLE3
                case 0x74: Push(new PickleTuple(PopMark(at))); break;               // TUPLE
                case 0x5D: Push(new List<object?>()); break;                        // EMPTY_LIST
                case 0x6C: Push(PopMark(at)); break;                                // LIST
                case 0x61: { var item = Pop(at); var list = ListAt(at); if (list.Count >= MaxContainerItems) throw Bad(at, "a list grows past 4 million items."); list.Add(item); break; } // APPEND
                case 0x65: { var items = PopMark(at); var list = ListAt(at); if (list.Count + items.Count > MaxContainerItems) throw Bad(at, "a list grows past 4 million items."); list.AddRange(items); break; } // APPENDS
                case 0x7D: Push(new PickleDict()); break;                           // EMPTY_DICT
                case 0x64: { var items = PopMark(at); var dict = new PickleDict(); SetItems(dict, items, at); Push(dict); break; } // DICT
                case 0x73: { var value = Pop(at); var key = Pop(at); SetItems(DictAt(at), [key, value], at); break; } // SETITEM
                case 0x75: { var items = PopMark(at); SetItems(DictAt(at), items, at); break; } // SETITEMS
                case 0x71: Put(Take(data, ref pos, 1, at)[0], at); break;           // BINPUT
                case 0x72: Put(BinaryPrimitives.ReadUInt32LittleEndian(Take(data, ref pos, 4, at)), at); break;     // LONG_BINPUT
                case 0x94: Put(_memo.Count, at); break;                             // MEMOIZE
                case 0x70: Put(TextInt(Line(data, ref pos, at), at), at); break;    // PUT (protocol 0)
                case 0x68: Get(Take(data, ref pos, 1, at)[0], at); break;           // BINGET
                case 0x6A: Get(BinaryPrimitives.ReadUInt32LittleEndian(Take(data, ref pos, 4, at)), at); break;     // LONG_BINGET
                case 0x67: Get(TextInt(Line(data, ref pos, at), at), at); break;    // GET (protocol 0)
                case 0x63:                                                          // GLOBAL "module\nname\n"
                {
                    string module = Line(data, ref pos, at), name = Line(data, ref pos, at);
                    Push(resolveGlobal(module, name));
                    break;
                }
                case 0x93:                                                          // STACK_GLOBAL
                {
                    var name = Pop(at); var module = Pop(at);
                    if (module is not string m || name is not string n) throw Bad(at, "STACK_GLOBAL needs two strings (module, name) on the stack.");
                    Push(resolveGlobal(m, n));
                    break;
                }
                case 0x52:                                                          // REDUCE: callable(*args)
                {
                    var args = Pop(at); var callable = Pop(at);
                    if (callable is not PickleGlobal { Call: not null } global) throw Bad(at, $"REDUCE calls {Describe(callable)}, which is not a callable global.");
                    if (args is not PickleTuple tuple) throw Bad(at, $"REDUCE on '{global.FullName}' needs an argument tuple, not {Describe(args)}.");
                    Push(global.Call(tuple));
                    break;
                }
                case 0x62:                                                          // BUILD: obj.__setstate__(state)
                {
                    var state = Pop(at); var target = Peek(at);
                    // An OrderedDict's state is its attributes (a state dict's _metadata): not weights, so dropped.
                    if (target is not PickleDict) throw Bad(at, $"BUILD sets the state of {Describe(target)}; only a dict's attributes are accepted.");
                    _ = state;
                    break;
                }
                case 0x51: Push(persistentLoad(Pop(at))); break;                    // BINPERSID
                case 0x50: Push(persistentLoad(Line(data, ref pos, at))); break;    // PERSID (protocol 0)
                case 0x69:                                                          // INST "module\nname\n": refuse by name first
                {
                    string module = Line(data, ref pos, at), name = Line(data, ref pos, at);
                    resolveGlobal(module, name);
                    throw Bad(at, $"INST creates an instance of '{module}.{name}'; a state dict holds no class instances.");
                }
                default:
                    throw Bad(at, $"opcode 0x{op:X2} ('{(char)op}') is not one a PyTorch state dict uses (NEWOBJ, OBJ, EXT*, sets and buffers are not read).");
            }
        }
    }

    PickleFormatException Bad(int at, string problem) => new(filePath, $"pickle byte {at}: {problem}");

    static string Describe(object? value) => value switch
    {
        null => "None",
        PickleGlobal g => $"'{g.FullName}'",
        string s => $"the string '{(s.Length > 40 ? s[..40] + "..." : s)}'",
        _ => $"a {value.GetType().Name}",
    };

    void Push(object? value)
    {
        if (_stack.Count >= MaxStackEntries) throw new PickleFormatException(filePath, $"the pickle stack grows past {MaxStackEntries:N0} values (a DUP bomb?); a state dict needs far fewer.");
        _stack.Add(value);
    }

    object? Pop(int at)
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _marks[^1] == _stack.Count)) throw Bad(at, "an opcode pops from an empty stack (or across a MARK).");
        var value = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    object? Peek(int at) => _stack.Count > 0 ? _stack[^1] : throw Bad(at, "an opcode reads the top of an empty stack.");

    List<object?> PopMark(int at)
    {
        if (_marks.Count == 0) throw Bad(at, "an opcode needs a MARK, but none is on the stack.");
        int start = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(start, _stack.Count - start);
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    List<object?> ListAt(int at) => Peek(at) as List<object?> ?? throw Bad(at, $"APPEND(S) needs a list below its items, not {Describe(Peek(at))}.");
    PickleDict DictAt(int at) => Peek(at) as PickleDict ?? throw Bad(at, $"SETITEM(S) needs a dict below its items, not {Describe(Peek(at))}.");

    void SetItems(PickleDict dict, List<object?> items, int at)
    {
        if (items.Count % 2 != 0) throw Bad(at, "a dict needs key, value pairs, but an odd number of items follows its MARK.");
        for (int i = 0; i < items.Count; i += 2)
        {
            var key = items[i] is string or long or bool or double ? items[i]! : throw Bad(at, $"dict key {Describe(items[i])} is not a string or number.");
            dict[key] = items[i + 1];
        }
    }

    void Put(long index, int at)
    {
        if (_memo.Count >= MaxMemoEntries && !_memo.ContainsKey(index)) throw Bad(at, $"the memo grows past {MaxMemoEntries} entries.");
        _memo[index] = Peek(at);
    }

    void Get(long index, int at) => Push(_memo.TryGetValue(index, out var value) ? value : throw Bad(at, $"memo entry {index} is read before it is written."));

    ReadOnlySpan<byte> Take(ReadOnlySpan<byte> data, ref int pos, long count, int at)
    {
        if (count < 0 || count > data.Length - pos) throw Bad(at, $"the opcode needs {count} more bytes but only {data.Length - pos} remain; the pickle is truncated.");
        var span = data.Slice(pos, (int)count);
        pos += (int)count;
        return span;
    }

    long Length(long count, int at) => count is >= 0 and <= int.MaxValue ? count : throw Bad(at, $"a length of {count} bytes is impossible here.");

    string Line(ReadOnlySpan<byte> data, ref int pos, int at)
    {
        int end = data[pos..].IndexOf((byte)'\n');
        if (end < 0) throw Bad(at, "a text argument has no terminating newline.");
        string line = Encoding.UTF8.GetString(data.Slice(pos, end));
        pos += end + 1;
        return line;
    }

    long TextInt(string text, int at) => text switch
    {
        "00" => 0, "01" => 1, // protocol 0 spells False/True this way
        _ => long.TryParse(text, out long v) ? v : throw Bad(at, $"'{text}' is not an integer."),
    };

    object Long(ReadOnlySpan<byte> bytes, int at)
    {
        var value = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        return value >= long.MinValue && value <= long.MaxValue ? (long)value : throw Bad(at, $"the integer {value} does not fit in 64 bits.");
    }

    static string Utf8(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);
    static string Latin1(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);
}

/// <summary>A Python dict (or OrderedDict) read from a pickle; keeps insertion order.</summary>
public sealed class PickleDict : OrderedDictionary<object, object?>;
