# Sourced by scripts/run.sh: start each local stand-in that has a start script.
# Each scripts/services/*.sh starts one service in the background, appends its pid to
# the "pids" array and exports the URL the app should use.
for service in scripts/services/*.sh; do
  [ -e "$service" ] || continue
  source "$service"
done
