// Placeholder until the forward-throughput benchmark lands (issue 2).
Console.WriteLine("benchmarks: not written yet");
return 1;
