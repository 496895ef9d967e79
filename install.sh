#!/usr/bin/env bash
# Install the Bedside box on Raspberry Pi OS (bookworm), or remove it.
#
#   sudo ./install.sh                     install or update (idempotent)
#   sudo ./install.sh --uninstall         remove everything but the data and the config
#   sudo ./install.sh --uninstall --purge remove the data, the config and the user too
#   ./install.sh --root DIR [--offline]   stage into DIR: no change to this system
#   sudo ./install.sh --wheelhouse DIR    install on a box without network (wheels from DIR)
#
# What it does: enables I2C (400 kHz) and the UART in config.txt and takes the login
# console off the UART (it is the technician's port); loads i2c-dev; creates the groups
# i2c/gpio if missing and the system user "bedside" (groups audio, i2c, gpio, dialout);
# copies the source to /opt/bedside/src and installs it with the [pi] extra into the
# virtualenv /opt/bedside/venv; writes a commented /etc/bedside/config.toml unless one
# exists; installs and enables systemd/bedside.service.
set -euo pipefail

ROOT=""
MODE=install
PURGE=0
OFFLINE=0
WHEELHOUSE=""
PYTHON=/usr/bin/python3
OVERLAYS=()
SRC_DIR=$(cd "$(dirname "$0")" && pwd)

MARK_BEGIN="# --- bedside: added by install.sh (removed by install.sh --uninstall) ---"
MARK_END="# --- end bedside ---"
# Debian packages that provide what pip would otherwise have to compile on the Pi.
# libfluidsynth3 and fluid-soundfont-gm (FluidR3 GM, MIT licence): the composer's synthesiser
APT_PKGS="python3-venv python3-numpy python3-pyaudio python3-serial python3-rpi-lgpio i2c-tools libfluidsynth3 fluid-soundfont-gm"

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'

Options:
  --root DIR    install into DIR instead of / (a staging tree; nothing else is touched)
  --uninstall   remove the box (keeps /var/lib/bedside and /etc/bedside)
  --purge       with --uninstall: also remove the data, the config and the user
  --offline     install only the bedside package, no downloads (dependencies must
                already be installed system-wide, e.g. from apt)
  --wheelhouse DIR
                install the Python packages from the wheels in DIR, no network (a box
                without network; make DIR on any machine with:
                pip download -d DIR --only-binary :all: --python-version 3.11 ...
                --platform manylinux2014_aarch64 for a Pi on 64-bit Raspberry Pi OS;
                tools/lab/build.py has the full list). Wheels for another machine
                are refused before anything is installed.
  --dtoverlay O add dtoverlay=O to config.txt for the sound card, e.g.
                max98357a,no-sdmode (amp enable on our GPIO) or hifiberry-dac; repeatable
  --python P    interpreter for the virtualenv (default /usr/bin/python3)
EOF
}

log() { printf 'install.sh: %s\n' "$*"; }
# Why pip failed, from its output (file $1), in one line naming what to do.
pip_failed() {
    local why=$1
    rm_log() { rm -f "$why"; }
    if grep -q 'portaudio.h' "$why"; then
        rm_log
        die "PyAudio could not be built: the PortAudio headers are missing (sudo apt-get install portaudio19-dev, or python3-pyaudio for the system Python), then run install.sh again"
    elif grep -Eqi 'Temporary failure in name resolution|Failed to establish a new connection|Network is unreachable|No matching distribution found' "$why"; then
        rm_log
        die "pip could not download the box's packages (no network? use --wheelhouse DIR or --offline)"
    fi
    rm_log
    die "pip could not install the box (its output is above)"
}
die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
    --root)
        [ $# -ge 2 ] || die "--root needs a directory"
        ROOT=$2
        shift 2
        ;;
    --root=*)
        ROOT=${1#--root=}
        shift
        ;;
    --uninstall)
        MODE=uninstall
        shift
        ;;
    --purge)
        PURGE=1
        shift
        ;;
    --offline)
        OFFLINE=1
        shift
        ;;
    --wheelhouse)
        [ $# -ge 2 ] || die "--wheelhouse needs a directory of wheels"
        [ -d "$2" ] || die "--wheelhouse $2 is not a directory"
        WHEELHOUSE=$(cd "$2" && pwd)
        shift 2
        ;;
    --dtoverlay)
        [ $# -ge 2 ] || die "--dtoverlay needs a value, e.g. max98357a,no-sdmode"
        [[ $2 =~ ^[A-Za-z0-9_][A-Za-z0-9_,=.-]*$ ]] || die "--dtoverlay '$2' is not an overlay name with parameters"
        OVERLAYS+=("$2")
        shift 2
        ;;
    --python)
        [ $# -ge 2 ] || die "--python needs a path"
        PYTHON=$2
        shift 2
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        die "unknown option '$1'"
        ;;
    esac
done
if [ "$PURGE" = 1 ] && [ "$MODE" != uninstall ]; then
    die "--purge goes with --uninstall (sudo ./install.sh --uninstall --purge)"
fi

if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT" || die "cannot create --root $ROOT"
    ROOT=$(cd "$ROOT" && pwd)
    [ "$ROOT" != / ] || ROOT=""
fi
STAGING=0
[ -n "$ROOT" ] && STAGING=1
if [ "$STAGING" = 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root: sudo $0 $*"
fi

OPT=$ROOT/opt/bedside
VENV=$OPT/venv
ETC=$ROOT/etc/bedside
UNIT_DIR=$ROOT/etc/systemd/system
STATE=$ROOT/var/lib/bedside
PREFIX=()
[ "$STAGING" = 1 ] && PREFIX=(--prefix "$ROOT")
REBOOT_NEEDED=0

# --- boot configuration ---------------------------------------------------------------------

boot_file() {
    # bookworm keeps the firmware files in /boot/firmware; older releases in /boot.
    local name=$1
    if [ -f "$ROOT/boot/firmware/$name" ]; then
        echo "$ROOT/boot/firmware/$name"
    elif [ -f "$ROOT/boot/$name" ]; then
        echo "$ROOT/boot/$name"
    fi
}

strip_block() {
    # Print file $1 without our marked block.
    awk -v b="$MARK_BEGIN" -v e="$MARK_END" '$0 == b {skip = 1; next} $0 == e {skip = 0; next} !skip' "$1"
}

replace_if_changed() {
    # Move $2 over $1 when they differ (keeping $1's mode); return 0 if $1 changed.
    if cmp -s "$1" "$2"; then
        rm -f "$2"
        return 1
    fi
    chmod --reference="$1" "$2" 2>/dev/null || true
    mv "$2" "$1"
    return 0
}

enable_interfaces() {
    local config cmdline tmp o
    config=$(boot_file config.txt)
    if [ -z "$config" ]; then
        if [ "$STAGING" = 1 ]; then
            mkdir -p "$ROOT/boot/firmware"
            : >"$ROOT/boot/firmware/config.txt"
            config=$ROOT/boot/firmware/config.txt
        else
            log "warning: no /boot/firmware/config.txt (not Raspberry Pi OS?): enable I2C and the UART yourself"
        fi
    fi
    if [ -n "$config" ]; then
        if [ ${#OVERLAYS[@]} -eq 0 ]; then
            # An update without --dtoverlay keeps the sound card chosen last time.
            while IFS= read -r o; do OVERLAYS+=("$o"); done < <(
                awk -v b="$MARK_BEGIN" -v e="$MARK_END" '$0 == b {in_b = 1; next}
                    $0 == e {in_b = 0} in_b && /^dtoverlay=/ {sub(/^dtoverlay=/, ""); print}' "$config"
            )
        fi
        tmp=$(mktemp "$config.XXXXXX")
        {
            strip_block "$config"
            # [all]: the lines below apply whatever [pi4]/[pi5] section came before.
            printf '%s\n[all]\n' "$MARK_BEGIN"
            printf 'dtparam=i2c_arm=on\ndtparam=i2c_arm_baudrate=400000\nenable_uart=1\n'
            for o in "${OVERLAYS[@]}"; do printf 'dtoverlay=%s\n' "$o"; done
            printf '%s\n' "$MARK_END"
        } >"$tmp"
        if replace_if_changed "$config" "$tmp"; then
            log "enabled I2C (400 kHz) and the UART in ${config#"$ROOT"}"
            REBOOT_NEEDED=1
        fi
    fi
    cmdline=$(boot_file cmdline.txt)
    if [ -n "$cmdline" ]; then
        # The UART is the technician's console port: no kernel/login console on it.
        local removed
        removed=$(tr ' ' '\n' <"$cmdline" | grep -E '^console=(serial0|ttyAMA0|ttyS0),' || true)
        if [ -n "$removed" ]; then
            printf '%s\n' "$removed" >>"$cmdline.bedside-removed"
            tmp=$(mktemp "$cmdline.XXXXXX")
            tr ' ' '\n' <"$cmdline" | grep -vE '^console=(serial0|ttyAMA0|ttyS0),' |
                grep -v '^$' | paste -sd ' ' >"$tmp"
            replace_if_changed "$cmdline" "$tmp" || true
            log "took the serial console off the UART in ${cmdline#"$ROOT"}"
            REBOOT_NEEDED=1
        fi
    fi
    mkdir -p "$ROOT/etc/modules-load.d"
    printf '# Written by the Bedside installer: /dev/i2c-1 for the pulse sensor.\ni2c-dev\n' \
        >"$ROOT/etc/modules-load.d/bedside.conf"
}

disable_interfaces() {
    local config cmdline tmp
    config=$(boot_file config.txt)
    if [ -n "$config" ] && grep -qxF "$MARK_BEGIN" "$config"; then
        tmp=$(mktemp "$config.XXXXXX")
        strip_block "$config" >"$tmp"
        replace_if_changed "$config" "$tmp" || true
        log "removed the Bedside lines from ${config#"$ROOT"}"
    fi
    cmdline=$(boot_file cmdline.txt)
    if [ -n "$cmdline" ] && [ -f "$cmdline.bedside-removed" ]; then
        tmp=$(mktemp "$cmdline.XXXXXX")
        { sort -u "$cmdline.bedside-removed" | paste -sd ' ' | tr -d '\n'; printf ' '; cat "$cmdline"; } >"$tmp"
        replace_if_changed "$cmdline" "$tmp" || true
        rm -f "$cmdline.bedside-removed"
        log "gave the serial console back in ${cmdline#"$ROOT"}"
    fi
    rm -f "$ROOT/etc/modules-load.d/bedside.conf"
}

# --- user and groups ------------------------------------------------------------------------

has_entry() { [ -f "$ROOT/etc/$1" ] && grep -q "^$2:" "$ROOT/etc/$1"; }

seed_staging_accounts() {
    # A staging tree needs account files for groupadd/useradd --prefix to edit.
    mkdir -p "$ROOT/etc"
    [ -f "$ROOT/etc/passwd" ] || printf 'root:x:0:0:root:/root:/bin/bash\n' >"$ROOT/etc/passwd"
    [ -f "$ROOT/etc/group" ] || printf 'root:x:0:\ndialout:x:20:\naudio:x:29:\n' >"$ROOT/etc/group"
    [ -f "$ROOT/etc/shadow" ] || printf 'root:*:19000:0:99999:7:::\n' >"$ROOT/etc/shadow"
    [ -f "$ROOT/etc/gshadow" ] || printf 'root:*::\ndialout:*::\naudio:*::\n' >"$ROOT/etc/gshadow"
    chmod 0640 "$ROOT/etc/shadow" "$ROOT/etc/gshadow"
}

create_user() {
    [ "$STAGING" = 1 ] && seed_staging_accounts
    local g
    for g in audio i2c gpio dialout; do
        if ! has_entry group "$g"; then
            groupadd "${PREFIX[@]}" --system "$g"
            log "created group $g"
        fi
    done
    if ! has_entry passwd bedside; then
        useradd "${PREFIX[@]}" --system --no-create-home --home-dir /var/lib/bedside \
            --shell /usr/sbin/nologin --user-group --groups audio,i2c,gpio,dialout \
            --comment "Bedside box" bedside
        log "created user bedside (groups audio, i2c, gpio, dialout)"
    else
        usermod "${PREFIX[@]}" --append --groups audio,i2c,gpio,dialout bedside
    fi
}

owner_ids() {
    awk -F: '$1 == "bedside" {print $3 ":" $4}' "$ROOT/etc/passwd"
}

# --- software ---------------------------------------------------------------------------------

install_debian_packages() {
    # Only the packages this release has (pip fills in the rest); refresh lists once if needed.
    local p wanted="" tried_update=0
    while :; do
        wanted=""
        for p in $APT_PKGS; do
            apt-cache show "$p" >/dev/null 2>&1 && wanted="$wanted $p"
        done
        if [ -n "$wanted" ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends $wanted >/dev/null; then
            log "installed Debian packages:$wanted"
            return 0
        fi
        [ "$tried_update" = 1 ] && break
        tried_update=1
        apt-get update -q >/dev/null || true
    done
    log "warning: could not install the Debian packages ($APT_PKGS); pip will try instead"
}

wheel_machine() {
    # The machine a wheel's file name is built for ("any" for pure Python ones).
    local tag=${1%.whl}
    tag=${tag##*-}
    case $tag in
    any) echo any ;;
    *_x86_64 | *.x86_64) echo x86_64 ;;
    *_aarch64 | *.aarch64) echo aarch64 ;;
    *_armv7l | *.armv7l) echo armv7l ;;
    *_armv6l | *.armv6l) echo armv6l ;;
    *_i686 | *.i686) echo i686 ;;
    *) echo "$tag" ;;
    esac
}

check_wheelhouse() {
    # Compiled wheels for another machine (x86_64 wheels copied to a Pi) would make pip say
    # only "no matching distribution": name the mismatch instead, before changing anything.
    local machine w m foreign=""
    machine=$(uname -m)
    for w in "$WHEELHOUSE"/*.whl; do
        [ -e "$w" ] || continue
        m=$(wheel_machine "$(basename "$w")")
        if [ "$m" != any ] && [ "$m" != "$machine" ]; then
            foreign="$foreign $(basename "$w")"
        fi
    done
    if [ -n "$foreign" ]; then
        die "the wheels in $WHEELHOUSE are not for this machine ($machine):$foreign; make them with pip download --platform for $machine (see --help)"
    fi
}

install_software() {
    if [ "$STAGING" = 0 ] && [ "$OFFLINE" = 0 ] && command -v apt-get >/dev/null; then
        install_debian_packages
    fi
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$PYTHON is older than Python 3.11"
    mkdir -p "$OPT"
    # A fresh copy of the source, so the installed box does not depend on this checkout.
    rm -rf "$OPT/src.new"
    mkdir -p "$OPT/src.new"
    (cd "$SRC_DIR" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - \
        pyproject.toml README.md device systemd install.sh) | tar -C "$OPT/src.new" -xf -
    rm -rf "$OPT/src"
    mv "$OPT/src.new" "$OPT/src"
    cp "$OPT/src/README.md" "$OPT/README.md"
    if [ ! -x "$VENV/bin/python" ]; then
        # System site packages: numpy, pyaudio and RPi.GPIO (rpi-lgpio) come from apt.
        "$PYTHON" -m venv --system-site-packages "$VENV"
        log "created the virtualenv ${VENV#"$ROOT"}"
    fi
    if [ "$OFFLINE" = 1 ]; then
        "$VENV/bin/pip" install -q --no-index --no-deps --no-build-isolation "$OPT/src" ||
            die "pip could not install the box offline"
    elif [ -n "$WHEELHOUSE" ]; then
        "$VENV/bin/pip" install -q --no-index --find-links "$WHEELHOUSE" --upgrade "$OPT/src[pi]" ||
            die "pip could not install the box from the wheels in $WHEELHOUSE (one missing? see above)"
    else
        local piplog
        piplog=$(mktemp)
        if ! "$VENV/bin/pip" install -q --upgrade "$OPT/src[pi]" >"$piplog" 2>&1; then
            cat "$piplog" >&2
            pip_failed "$piplog"
        fi
        rm -f "$piplog"
    fi
    rm -rf "$OPT/src/build" "$OPT/src/"*.egg-info
    log "installed $("$VENV/bin/bedside" --version) into ${VENV#"$ROOT"}"
}

write_config() {
    mkdir -p "$ETC"
    local target=$ETC/config.toml empty tmp
    if [ -e "$target" ]; then
        log "kept the existing ${target#"$ROOT"}"
    else
        empty=$(mktemp)
        tmp=$(mktemp "$ETC/.config.toml.XXXXXX")
        # The built-in defaults, explained key by key (an empty file is all defaults).
        env -u BEDSIDE_CONFIG "$VENV/bin/bedside" config show --commented --config "$empty" |
            sed '1{/^# effective configuration/d}' >"$tmp" ||
            { rm -f "$empty" "$tmp"; die "could not generate the default configuration"; }
        rm -f "$empty"
        chmod 0644 "$tmp"
        mv "$tmp" "$target"
        log "wrote a commented default ${target#"$ROOT"}"
    fi
    # The service saves CFG SAVE changes here (ReadWritePaths= in the unit).
    if [ "$(id -u)" -eq 0 ]; then
        chown "$(owner_ids)" "$ETC" "$target"
    fi
    chmod 0755 "$ETC"
}

install_unit() {
    mkdir -p "$UNIT_DIR"
    install -m 0644 "$SRC_DIR/systemd/bedside.service" "$UNIT_DIR/bedside.service"
    if [ "$STAGING" = 1 ]; then
        systemctl --root="$ROOT" enable bedside.service >/dev/null 2>&1 ||
            die "systemctl --root could not enable the unit"
    else
        systemctl daemon-reload
        systemctl enable bedside.service >/dev/null 2>&1
    fi
    log "installed and enabled bedside.service"
}

# --- main -------------------------------------------------------------------------------------

do_install() {
    [ "$STAGING" = 1 ] && log "staging into $ROOT (this system is not changed)"
    if [ -n "$WHEELHOUSE" ] && [ "$OFFLINE" = 0 ]; then
        check_wheelhouse
    fi
    enable_interfaces
    create_user
    install_software
    write_config
    install_unit
    if [ "$STAGING" = 0 ]; then
        if [ "$REBOOT_NEEDED" = 1 ]; then
            log "done. Reboot to switch on I2C and the UART: the box then plays at boot."
        else
            # --no-block: the unit never gives up (Restart=always, no start limit), so a
            # box that cannot start would keep a blocking "systemctl start" waiting forever.
            systemctl restart --no-block bedside.service
            local i
            for i in $(seq 1 120); do
                systemctl is-active -q bedside.service && break
                sleep 1
            done
            if systemctl is-active -q bedside.service; then
                log "done. bedside.service is running; status: systemctl status bedside"
            else
                log "warning: bedside.service is not running after 120 s (it keeps trying); see: journalctl -u bedside"
            fi
        fi
    else
        log "done (staged)."
    fi
}

do_uninstall() {
    if [ "$STAGING" = 1 ]; then
        systemctl --root="$ROOT" disable bedside.service >/dev/null 2>&1 || true
    elif command -v systemctl >/dev/null; then
        systemctl disable --now bedside.service >/dev/null 2>&1 || true
    fi
    rm -f "$UNIT_DIR/bedside.service"
    [ "$STAGING" = 0 ] && systemctl daemon-reload 2>/dev/null || true
    rm -rf "$OPT"
    disable_interfaces
    log "removed the box (unit, /opt/bedside, boot settings)"
    if [ "$PURGE" = 1 ]; then
        rm -rf "$ETC" "$STATE"
        if has_entry passwd bedside; then
            userdel "${PREFIX[@]}" bedside
        fi
        if has_entry group bedside; then
            groupdel "${PREFIX[@]}" bedside
        fi
        log "purged the sessions, the configuration and the user bedside"
    else
        log "kept the data in /var/lib/bedside and the configuration in /etc/bedside (--purge removes them)"
    fi
}

if [ "$MODE" = install ]; then
    do_install
else
    do_uninstall
fi
