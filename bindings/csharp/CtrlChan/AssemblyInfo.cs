using System.Reflection;
using System.Runtime.CompilerServices;

[assembly: AssemblyTitle("CtrlChan")]
[assembly: AssemblyDescription("ControlChannelTrigger + WebSocketKeepAlive (Windows.Networking.Sockets) over the ctrlchan C ABI")]
[assembly: AssemblyVersion("0.1.0.0")]
[assembly: InternalsVisibleTo("CtrlChan.Tests")]
