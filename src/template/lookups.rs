use minijinja::Environment;

pub(crate) fn register(_env: &mut Environment<'static>) {}
