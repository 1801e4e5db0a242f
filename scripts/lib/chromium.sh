# Headless Chromium for the console's browser test. Source this file, then
# call chromium_ensure: it installs Debian's `chromium` when it is missing and
# exports FPR_TEST_CHROMIUM (the browser's path). When it cannot be installed
# it says so loudly and exports FPR_TEST_CHROMIUM_MISSING with the reason; the
# browser test then reports itself skipped, or fails when FPR_REQUIRE_BROWSER
# is set (as .ci/run sets it).

chromium_path() {
  command -v chromium || command -v chromium-browser || return 1
}

chromium_ensure() {
  local path
  if ! path=$(chromium_path); then
    echo "chromium not found: installing it with apt-get (for the console's browser test)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
      echo "##################################################################" >&2
      echo "# WARNING: chromium could not be installed: the console's        #" >&2
      echo "# browser test will be SKIPPED.                                  #" >&2
      echo "##################################################################" >&2
      export FPR_TEST_CHROMIUM_MISSING="apt-get install chromium failed"
      return 0
    fi
    path=$(chromium_path) || {
      export FPR_TEST_CHROMIUM_MISSING="chromium installed but not on PATH"
      return 0
    }
  fi
  export FPR_TEST_CHROMIUM="$path"
}
