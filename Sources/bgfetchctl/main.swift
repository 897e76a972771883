// bgfetchctl: inspect and control the bgfetch service. See `bgfetchctl --help`.
await Bgfetchctl.runAndExit()
