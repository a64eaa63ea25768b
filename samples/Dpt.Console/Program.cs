using Dpt.ConsoleApp;

try
{
    var commandLine = CommandLine.Parse(args);
    if (commandLine.Help)
    {
        Console.WriteLine(CommandLine.Usage);
        return 0;
    }
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
    new MainJob(commandLine, cancel.Token).Run();
    return 0;
}
catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException or InvalidOperationException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("cancelled");
    return 130;
}
