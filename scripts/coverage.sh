#!/usr/bin/env bash
# Prints the statement coverage of each pure-core package from a cover
# profile and fails when one is under the minimum.
set -euo pipefail
profile=${1:?cover profile}
min=${2:-85}
module=$(go list -m)
fail=0
echo "coverage (unit tests, minimum ${min}%):"
for pkg in spec profiles profiles/seccompmodel policy; do
  # A block appears once per test binary with -coverpkg: count it once,
  # covered if any binary covered it.
  pct=$(awk -v p="$module/$pkg/" 'NR>1 && index($1, p)==1 && substr($1, length(p)+1) !~ /\// {
          n[$1]=$2; if ($3>0) c[$1]=1 }
        END { for (b in n) { total+=n[b]; if (b in c) covered+=n[b] }
              if (total==0) print "0.0"; else printf "%.1f", 100*covered/total }' "$profile")
  status=ok
  if awk -v a="$pct" -v b="$min" 'BEGIN{exit !(a<b)}'; then status=LOW; fail=1; fi
  printf "  %-22s %6s%%  %s\n" "$pkg/" "$pct" "$status"
done
exit $fail
