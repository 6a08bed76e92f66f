// Finds libctrlchan for [DllImport("ctrlchan")] and, when it cannot, says where it looked.
//
// .NET Core 3+ / .NET 6+ (System.Runtime.InteropServices.NativeLibrary exists; found by
// reflection so this netstandard2.0 assembly still compiles and runs on Mono):
//   a DllImportResolver tries, first match wins,
//     1. $CTRLCHAN_LIBRARY (the library file, or a directory holding it): an explicit choice,
//        nothing else is tried when it is set;
//     2. the runtime's default probing (the app's deps.json, which lists the NuGet package's
//        runtimes/<rid>/native/ asset, the app directory, LD_LIBRARY_PATH, the system);
//     3. next to CtrlChan.dll, its runtimes/<rid>/native/ subfolder, and the NuGet package
//        layout (<package>/lib/netstandard2.0/CtrlChan.dll -> <package>/runtimes/<rid>/native/);
//   and throws DllNotFoundException naming every path tried.
// Mono and .NET Framework (no NativeLibrary): the runtime's own search (next to CtrlChan.dll,
//   LD_LIBRARY_PATH, the system; Mono's <dllmap> config also works). The first native call
//   is made here, and a failure becomes a DllNotFoundException naming every place searched
//   (raised as the InnerException of a TypeInitializationException for CtrlChan.NativeMethods).
using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace CtrlChan
{
    internal static class NativeLibraryLoader
    {
        internal const string EnvVar = "CTRLCHAN_LIBRARY";
        internal const string Rid = "linux-x64";
        internal static readonly string FileName = "libctrlchan.so";

        private static readonly object Gate = new object();
        private static bool _initialized;
        private static string _how = "not loaded yet";
        private static Delegate _resolver;       // kept alive for the process
        private static MethodInfo _tryLoadPath;  // NativeLibrary.TryLoad(string, out IntPtr)
        private static MethodInfo _tryLoadName;  // NativeLibrary.TryLoad(string, Assembly, DllImportSearchPath?, out IntPtr)

        /// <summary>How the library was (or will be) found, for diagnostics.</summary>
        internal static string Describe()
        {
            lock (Gate) return _how;
        }

        /// <summary>Called once, from NativeMethods' static constructor, before any native call.</summary>
        internal static void Initialize()
        {
            lock (Gate)
            {
                if (_initialized) return;
                _initialized = true;
                Type nativeLibrary = Type.GetType("System.Runtime.InteropServices.NativeLibrary", false);
                if (nativeLibrary != null && RegisterResolver(nativeLibrary)) return;
            }
            ProbeDefaultSearch();
        }

        internal static DllNotFoundException NotFound(IEnumerable<string> tried, bool envVarHonoured = true)
        {
            var sb = new StringBuilder();
            sb.Append("cannot load the ctrlchan native library ").Append(FileName).Append("; tried:");
            foreach (string t in tried) sb.Append("\n  ").Append(t);
            sb.Append('\n');
            if (envVarHonoured) sb.Append("set $").Append(EnvVar).Append(" to the library (or its directory), or ");
            sb.Append("put ").Append(FileName).Append(" next to CtrlChan.dll or on LD_LIBRARY_PATH (the NuGet package ships it under runtimes/")
              .Append(Rid).Append("/native/), or install it system-wide (cargo cinstall)");
            return new DllNotFoundException(sb.ToString());
        }

        private static string AssemblyDirectory()
        {
            try
            {
                string loc = typeof(NativeLibraryLoader).Assembly.Location;
                return string.IsNullOrEmpty(loc) ? AppDomain.CurrentDomain.BaseDirectory : Path.GetDirectoryName(loc);
            }
            catch (Exception) { return AppDomain.CurrentDomain.BaseDirectory; }
        }

        /// <summary>The explicit choice from $CTRLCHAN_LIBRARY, or null.</summary>
        private static string ExplicitPath()
        {
            string env = Environment.GetEnvironmentVariable(EnvVar);
            if (string.IsNullOrEmpty(env)) return null;
            return Directory.Exists(env) ? Path.Combine(env, FileName) : env;
        }

        private static IEnumerable<string> PackagePaths()
        {
            string dir = AssemblyDirectory();
            yield return Path.Combine(dir, FileName);
            yield return Path.Combine(dir, "runtimes", Rid, "native", FileName);
            yield return Path.GetFullPath(Path.Combine(dir, "..", "..", "runtimes", Rid, "native", FileName));
        }

        // ---- .NET Core 3+ -----------------------------------------------------------------

        private static bool RegisterResolver(Type nativeLibrary)
        {
            try
            {
                Type resolverType = typeof(DllImportAttribute).Assembly.GetType("System.Runtime.InteropServices.DllImportResolver", false)
                                    ?? nativeLibrary.Assembly.GetType("System.Runtime.InteropServices.DllImportResolver", false);
                MethodInfo set = nativeLibrary.GetMethod("SetDllImportResolver", BindingFlags.Public | BindingFlags.Static);
                _tryLoadPath = nativeLibrary.GetMethod("TryLoad", new[] { typeof(string), typeof(IntPtr).MakeByRefType() });
                _tryLoadName = nativeLibrary.GetMethod("TryLoad",
                    new[] { typeof(string), typeof(Assembly), typeof(DllImportSearchPath?), typeof(IntPtr).MakeByRefType() });
                if (resolverType == null || set == null || _tryLoadPath == null || _tryLoadName == null) return false;
                MethodInfo resolve = typeof(NativeLibraryLoader).GetMethod("Resolve", BindingFlags.NonPublic | BindingFlags.Static);
                _resolver = Delegate.CreateDelegate(resolverType, resolve);
                set.Invoke(null, new object[] { typeof(NativeLibraryLoader).Assembly, _resolver });
                _how = "NativeLibrary resolver registered";
                return true;
            }
            catch (Exception)
            {
                return false;   // e.g. a resolver is already set: the runtime's default search applies
            }
        }

        private static bool TryLoad(MethodInfo m, object[] args, out IntPtr handle)
        {
            handle = IntPtr.Zero;
            if ((bool)m.Invoke(null, args))
            {
                handle = (IntPtr)args[args.Length - 1];
                return true;
            }
            return false;
        }

        private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
        {
            if (libraryName != NativeMethods.Lib) return IntPtr.Zero;
            var tried = new List<string>();
            IntPtr h;
            string explicitPath = ExplicitPath();
            if (explicitPath != null)
            {
                if (!File.Exists(explicitPath)) tried.Add("$" + EnvVar + ": " + explicitPath + " (not found)");
                else if (TryLoad(_tryLoadPath, new object[] { explicitPath, IntPtr.Zero }, out h)) return Found(h, explicitPath);
                else tried.Add("$" + EnvVar + ": " + explicitPath + " (could not be loaded)");
                throw NotFound(tried);
            }
            if (TryLoad(_tryLoadName, new object[] { libraryName, assembly, searchPath, IntPtr.Zero }, out h))
                return Found(h, "the runtime's default search for \"" + libraryName + "\"");
            tried.Add("the runtime's default search for \"" + libraryName + "\" (deps.json, app directory, LD_LIBRARY_PATH, system): not found");
            foreach (string p in PackagePaths())
            {
                if (!File.Exists(p)) { tried.Add(p + " (not found)"); continue; }
                if (TryLoad(_tryLoadPath, new object[] { p, IntPtr.Zero }, out h)) return Found(h, p);
                tried.Add(p + " (could not be loaded)");
            }
            throw NotFound(tried);
        }

        private static IntPtr Found(IntPtr h, string how)
        {
            lock (Gate) _how = "loaded " + FileName + " from " + how;
            return h;
        }

        // ---- Mono / .NET Framework ----------------------------------------------------------

        private static void ProbeDefaultSearch()
        {
            try
            {
                NativeMethods.ctrlchan_version();
                lock (Gate) _how = "loaded " + FileName + " through the runtime's own search (next to CtrlChan.dll, LD_LIBRARY_PATH, system)";
            }
            catch (DllNotFoundException)
            {
                var tried = new List<string>();
                tried.Add(Path.Combine(AssemblyDirectory(), FileName) + " (next to CtrlChan.dll)");
                string ld = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
                if (!string.IsNullOrEmpty(ld))
                    foreach (string d in ld.Split(':'))
                        if (d.Length > 0) tried.Add(Path.Combine(d, FileName) + " (LD_LIBRARY_PATH)");
                tried.Add(FileName + " in the system library path (/etc/ld.so.cache, /lib, /usr/lib)");
                string explicitPath = ExplicitPath();
                if (explicitPath != null)
                    tried.Add("($" + EnvVar + "=" + explicitPath + " is honoured only on .NET Core 3+; on Mono use LD_LIBRARY_PATH or a <dllmap>)");
                throw NotFound(tried, false);
            }
        }
    }
}
