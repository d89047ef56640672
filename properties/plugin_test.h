#pragma once
// The test program of a plug-in (docs/plugins.md): register the plug-in, then hand over to
//
//     int main(int argc, char** argv) {
//       qconform::register_plugin(my_plugin());
//       return qconform::plugin_test_main(argc, argv);
//     }
//
// Run plainly (or by ctest) it is a Boost.Test program: for every kind the registered
// plug-ins implement and every pair they imply (reference vs plug-in, plug-in vs each side of
// compare_with), a rapidcheck property draws case configurations and the agreement oracle
// checks each output element against the pair's tolerance row; a failure shrinks to a small
// counterexample and prints the line that reruns it. A last test runs the same pairs as a
// conformance run and writes DIR/results.json and DIR/report.html (DIR: $QCONFORM_PLUGIN_OUT,
// default ./plugin-conformance). Cases per property: QCONFORM_PROFILE (quick 100, deep 1000);
// QCONFORM_SEED pins rapidcheck's seed; RC_PARAMS="reproduce=..." replays a failure.
//
//     PROGRAM case --kind KIND --pair 'A,B' --case 'name=value ... seed=N style=S'
//
// reruns one case (the line failures print), exit 0 when it passes.
namespace qconform {

// `qconform_tool`: the qconform tool the agreement oracle reruns LibTorch's answers with in a
// fresh process when they disagree (oracles/agreement.h); QCONFORM_TOOL in the environment
// wins. The inline form passes the one of the package the program was built against.
int plugin_test_main(int argc, char** argv, const char* qconform_tool);

#ifdef QCONFORM_INSTALLED_TOOL
inline int plugin_test_main(int argc, char** argv) { return plugin_test_main(argc, argv, QCONFORM_INSTALLED_TOOL); }
#endif

}  // namespace qconform
