//! The one place where a user's `--backend` becomes a Burn `Device`.
//!
//! Burn 0.22 has no backend type parameter: tensors carry a `Device`. Everything else in
//! the workspace takes `&Device`. This file also probes whether a backend can actually run
//! here (wgpu needs a Vulkan/Metal/DX12 driver), turning a would-be panic into an error.

#[cfg(feature = "burn")]
use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
#[cfg(feature = "burn")]
use std::sync::{Mutex, Once};

#[cfg(feature = "wgpu")]
use burn::tensor::DeviceKind;
#[cfg(feature = "burn")]
use burn::tensor::{Device, Tensor};

use crate::error::NetError;

/// The backends sigprop can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// Burn's pure-Rust CPU backend (the default).
    Flex,
    /// The classic ndarray CPU backend (deprecated upstream, kept as an option; only when
    /// built with the `ndarray` feature).
    Ndarray,
    /// wgpu on the best available adapter (a GPU, or Mesa's software Vulkan on CPU; only when
    /// built with the `wgpu` feature, a default of this crate but not of the `sigprop` binary).
    Wgpu,
    /// CUDA device 0 (only when built with the `cuda` feature).
    Cuda,
}

/// Names accepted by `--backend`.
pub const BACKEND_NAMES: &[&str] = &["flex", "ndarray", "wgpu", "cuda"];

impl BackendKind {
    /// Every backend name and whether this build includes it.
    pub fn all() -> [(BackendKind, bool); 4] {
        [
            (BackendKind::Flex, true),
            (BackendKind::Ndarray, cfg!(feature = "ndarray")),
            (BackendKind::Wgpu, cfg!(feature = "wgpu")),
            (BackendKind::Cuda, cfg!(feature = "cuda")),
        ]
    }

    /// True for backends that share the host CPU (configurations may run in parallel).
    pub fn is_cpu(self) -> bool {
        matches!(self, BackendKind::Flex | BackendKind::Ndarray)
    }

    /// The cargo features of a binary that has this backend and every one this build has:
    /// `wgpu` in a flex-only build, `wgpu,ndarray` in one with ndarray.
    pub fn features_to_build(self) -> String {
        let mut features: Vec<&str> = BackendKind::all()
            .iter()
            .filter(|&&(k, built)| built && k != BackendKind::Flex && k != self)
            .map(|(k, _)| k.name())
            .collect();
        if self != BackendKind::Flex {
            features.insert(0, self.name());
        }
        features.join(",")
    }

    /// The spec name.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "flex" => Ok(BackendKind::Flex),
            "ndarray" => Ok(BackendKind::Ndarray),
            "wgpu" => Ok(BackendKind::Wgpu),
            "cuda" => Ok(BackendKind::Cuda),
            other => Err(NetError::UnknownBackend {
                name: other.to_string(),
                allowed: BACKEND_NAMES.join(", "),
            }),
        }
    }
}

#[cfg(feature = "burn")]
/// The (non-autodiff) device for a backend, checked to run one tiny operation.
///
/// A backend missing from this build, or one whose driver is absent (wgpu without any
/// Vulkan adapter), is a [`NetError::BackendUnavailable`], never a panic.
pub fn device(kind: BackendKind) -> Result<Device, NetError> {
    let unavailable = |why: String| NetError::BackendUnavailable {
        backend: kind.name(),
        why,
    };
    let device = match kind {
        BackendKind::Flex => Device::flex(),
        // Deprecated upstream, kept as an option: the classic CPU backend to cross-check flex.
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        BackendKind::Ndarray => Device::ndarray(),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => Device::wgpu(DeviceKind::DefaultDevice),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Device::cuda(0),
        #[allow(unreachable_patterns)]
        _ => {
            let built: Vec<&str> = BackendKind::all()
                .iter()
                .filter(|(_, built)| *built)
                .map(|(k, _)| k.name())
                .collect();
            let features = kind.features_to_build();
            return Err(unavailable(format!(
                "this sigprop was built without it; build it with `cargo build --release \
                 --features {features}` and run that binary, or `cargo run --release --features \
                 {features} -- ...` (built in: {})",
                built.join(", ")
            )));
        }
    };
    // Each backend is probed once per process; the answer is kept, so parallel workers
    // asking for the same device neither probe again nor race.
    static PROBED: Mutex<Vec<(BackendKind, Result<(), String>)>> = Mutex::new(Vec::new());
    let mut probed = PROBED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let answer = match probed.iter().find(|(k, _)| *k == kind) {
        Some((_, answer)) => answer.clone(),
        None => {
            let answer = probe(&device);
            probed.push((kind, answer.clone()));
            answer
        }
    };
    answer.map_err(unavailable)?;
    Ok(device)
}

#[cfg(feature = "burn")]
thread_local! {
    /// Set while this thread runs a probe: its panic message is the probe's answer, not
    /// something to print.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

#[cfg(feature = "burn")]
/// Installs, once per process, a panic hook that defers to the previous one except on a
/// thread inside [`probe`]. The hook is never swapped back and forth, so a panic on another
/// thread is always reported.
fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

#[cfg(feature = "burn")]
/// Runs `1 + 1` on the device with this thread's panics caught and silenced.
fn probe(device: &Device) -> Result<(), String> {
    let device = device.clone();
    install_quiet_hook();
    QUIET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(move || {
        let t = Tensor::<1>::from_floats([1.0f32], &device);
        let v: f32 = (t.clone() + t).into_scalar();
        v
    });
    QUIET.with(|q| q.set(false));
    match result {
        Ok(2.0) => Ok(()),
        Ok(v) => Err(format!("probe computed 1 + 1 = {v}")),
        Err(payload) => Err(payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the backend failed to start".into())
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()),
    }
}

#[cfg(feature = "burn")]
/// A human-readable name of the device, for the manifest.
pub fn device_name(device: &Device) -> String {
    format!("{device:?}")
}

#[cfg(feature = "burn")]
/// Whether `device` runs its kernels on the host's cores (flex, ndarray), where a kernel costs
/// no launch and merging small kernels only adds copies; a GPU backend's do cost one. Read
/// from the device's name: Burn's dispatch enum is not public.
pub(crate) fn on_host(device: &Device) -> bool {
    let name = device_name(device);
    name.contains("Flex") || name.contains("NdArray")
}

#[cfg(feature = "burn")]
/// Refuse a pass in `dtype` on the backend `kind` where Burn reports no arithmetic in that
/// type (a GPU without f16 or bf16 shaders, the ndarray backend's halves): computing in it
/// there gives backend-dependent garbage, never a measurement.
pub fn check_dtype(kind: BackendKind, dtype: crate::precision::Dtype) -> Result<(), NetError> {
    let dev = device(kind)?;
    if dev.supports_dtype(dtype.float_dtype()) {
        return Ok(());
    }
    let usable: Vec<&str> = [
        crate::precision::Dtype::F32,
        crate::precision::Dtype::Bf16,
        crate::precision::Dtype::F16,
    ]
    .into_iter()
    .filter(|d| dev.supports_dtype(d.float_dtype()))
    .map(|d| d.name())
    .collect();
    Err(NetError::BadConfig {
        key: "dtype",
        value: dtype.name().into(),
        allowed: format!(
            "{} on backend {} (it has no {dtype} arithmetic on this machine)",
            usable.join(", "),
            kind.name()
        ),
    })
}
